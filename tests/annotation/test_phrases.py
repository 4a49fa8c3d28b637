"""The offline noun-phrase chunker and the non-object filter."""

from __future__ import annotations

import pytest

from pite.annotation.phrases import (
    NonObjectPhraseFilter,
    NounPhrase,
    RuleBasedNounPhraseExtractor,
    build_phrase_extractor,
    is_verb_like,
)

CASES = {
    "the red circle moves to the left": ["the red circle", "the left"],
    "A man is riding a horse on the beach.": ["A man", "a horse", "the beach"],
    "people are dancing on stage": ["people", "stage"],
    "a woman is seen speaking to the camera and holding a brush": ["a woman", "the camera", "a brush"],
    "The man's hat falls off.": ["The man", "hat"],
    "the running man jumps over two red cones": ["the running man", "two red cones"],
    "Two girls play tennis while a dog watches them.": ["Two girls", "tennis", "a dog"],
    "he picks up the blue square and puts it in the box": ["the blue square", "the box"],
    "the yellow square disappears": ["the yellow square"],
    "She takes a walk with her T-shirt on": ["a walk", "her T-shirt"],
    "the man is tall and strong": ["the man"],
    "a chef slowly slices 3 tomatoes": ["a chef", "3 tomatoes"],
}


@pytest.mark.parametrize("caption", sorted(CASES))
def test_rule_based_chunks_and_spans(caption):
    phrases = RuleBasedNounPhraseExtractor()(caption)
    assert [p.text for p in phrases] == CASES[caption]
    for phrase in phrases:
        assert caption[phrase.start : phrase.end] == phrase.text
    assert all(a.end <= b.start for a, b in zip(phrases, phrases[1:])), "spans are ordered and disjoint"


def test_verb_detection_covers_inflections():
    for word in (
        "moves",
        "moved",
        "moving",
        "runs",
        "running",
        "carries",
        "carried",
        "stops",
        "stopped",
        "threw",
        "rode",
    ):
        assert is_verb_like(word), word
    for word in ("circle", "square", "horse", "beach", "table"):
        assert not is_verb_like(word), word


def test_filter_drops_places_and_views_with_reasons():
    keep = NonObjectPhraseFilter()
    assert keep(NounPhrase("the left", 0, 8)) == "non_object"
    assert keep(NounPhrase("the front", 0, 9)) == "non_object"
    assert keep(NounPhrase("the camera", 0, 10)) == "non_object"
    assert keep(NounPhrase("two", 0, 3)) == "no_content"
    assert keep(NounPhrase("the red circle", 0, 14)) is None
    assert keep(NounPhrase("the front door", 0, 14)) is None, "only the head word decides"


def test_extractor_spec_errors_are_specific():
    assert isinstance(build_phrase_extractor("rules"), RuleBasedNounPhraseExtractor)
    with pytest.raises(ValueError, match="unknown noun-phrase extractor 'parser'"):
        build_phrase_extractor("parser")
    with pytest.raises(TypeError, match="caption must be a str"):
        RuleBasedNounPhraseExtractor()(None)


def test_spacy_extractor_needs_spacy_or_says_so():
    try:
        import spacy  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install spacy"):
            build_phrase_extractor("spacy")
    else:
        with pytest.raises(OSError, match="not installed or not a valid path"):
            build_phrase_extractor("spacy:/no/such/pipeline")
