"""Noun phrases of a caption, with their character spans: step 1 of the annotation pipeline.

The paper parses each caption with a constituency parser (SuPar) and keeps the lowest-level noun phrases. No parser
ships with transformers and nothing may be downloaded at annotation time, so the default here is a rule-based
chunker that needs no model:

- words are split off with their character offsets (hyphens and apostrophes stay inside a word);
- closed-class words (determiners, possessives, numerals, pronouns, prepositions, conjunctions, auxiliaries,
  common adverbs) come from small fixed lists; open-class words are "content" words;
- a chunk is `[determiners/possessives/numerals]* content+`; it ends at any closed-class word, punctuation, a
  possessive "'s", an "-ly" adverb, or a *verb-looking* word: one whose lemma (simple suffix stripping) is in a list
  of about 200 verbs common in video captions, or any "-ing"/"-ed" word that does not follow a determiner;
- a verb-looking word right after a determiner is a noun ("a walk", "the running man");
- after an auxiliary ("is", "are", "was", "has"...) the content words up to the next determiner, preposition or
  punctuation are a predicate ("is tall", "are dancing") and produce no chunk.

What it gets wrong, honestly: verbs missing from its list that follow a noun are swallowed into the chunk ("the
dog fetches" becomes one chunk when "fetch" is not listed), noun-noun compounds whose last noun is also a listed
verb are cut ("a bike ride" gives "a bike"), and adjectives in predicate position after a main verb become chunks
("looks happy" gives "happy"). Phrases are then filtered (see `NonObjectPhraseFilter`), and a grounding model must
still find each phrase in the frame, so most such mistakes end as "not grounded" rather than as bad trajectories.
For parser-quality chunks install spaCy and a pipeline and use `SpacyNounPhraseExtractor`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class NounPhrase:
    """A phrase of a caption: `caption[start:end] == text`."""

    text: str
    start: int
    end: int


@runtime_checkable
class NounPhraseExtractor(Protocol):
    """Anything that turns a caption into its noun phrases (in caption order, spans non-overlapping)."""

    def __call__(self, caption: str) -> list[NounPhrase]: ...


_WORD = re.compile(r"[A-Za-z0-9]+(?:[-'\u2019][A-Za-z0-9]+)*|[^\sA-Za-z0-9]")

DETERMINERS = frozenset(
    "a an the this that these those another each every either neither some any no all both several many few much "
    "more most other such my your his her its our their whose".split()
)
NUMERALS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty thirty forty fifty hundred thousand dozen couple".split()
)
PRONOUNS = frozenset(
    "i you he she it we they me him us them myself yourself himself herself itself ourselves themselves someone "
    "somebody something everyone everybody everything anyone anybody anything nobody nothing who whom which what "
    "where when why how there here one's".split()
)
PREPOSITIONS = frozenset(
    "in on at to from with without into onto over under above below behind beside besides between among through "
    "across along around about after before during until till of off up down out by for near toward towards "
    "against upon within inside outside past via like than as throughout beneath underneath".split()
)
CONJUNCTIONS = frozenset("and or but nor so yet then because although though if whether while once".split())
AUXILIARIES = frozenset(
    "is are was were be been being am 's 're has have had having do does did will would shall should can could may "
    "might must isn't aren't wasn't weren't doesn't don't didn't can't won't".split()
)
ADVERBS = frozenset(
    "not very also again just still now back away together too only even never always often already soon "
    "almost quite rather around forward backward afterwards later".split()
)
# Nouns that end in "-ly" (everything else ending in "-ly" is taken for an adverb).
LY_NOUNS = frozenset("family fly belly jelly bully lily ally rally holly butterfly dragonfly assembly supply".split())
# Base forms of verbs frequent in video captions. Inflected forms are recognised by suffix stripping.
VERBS = frozenset(
    """
    add adjust appear apply arrive ask attach bake balance bang bark bathe beat begin bend bite blow boil bounce bow
    break bring brush build bump burn buy call carry catch change chase check chop clap clean climb close collect
    comb come continue cook cover crawl cross cry cut dance demonstrate describe dig dip disappear dive do draw dress
    drink drive drop dry eat enter exit explain fall feed fight fill finish fix flip float fly fold follow get give
    go grab grind groom hang hit hold hop hug hurry introduce iron jog join juggle jump kick kiss kneel knit knock
    land laugh lay lead lean leave lick lie lift light listen load look lower make mix mop move nod open paddle paint
    pass pat peel perform pet pick place plant play point polish pour practice practise prepare present press pull
    pump punch push put race raise reach read release remove repeat ride rinse rise roll rotate row rub run sand
    saw say scoop scrape scrub see seem serve set sew shake shave shoot show shovel shuffle sing sit skate ski skip
    slice slide smile smoke sneeze speak spin splash spray spread squat squeeze stack stand stare start stay step
    stick stir stop stretch strike surf swim swing take talk tap taste teach tell throw tie toss touch turn twist
    type use vacuum wait wake walk wash watch wave wear weave whip win wipe work wrap wrestle write yell
    """.split()
)
IRREGULAR_VERBS = frozenset(
    """
    began begun bent bit bitten blew blown broke broken brought built bought caught came chose chosen dealt dug did
    done drew drawn drank drunk drove driven ate eaten fell fallen fed fought found flew flown forgot forgotten got
    gotten gave given went gone grew grown hung held hid hidden hit kept knelt knew known laid led left lent lay lain
    lit lost made meant met paid put quit ran rang rung read rode ridden rose risen said sang sung sat saw seen sent
    set sewn shook shaken shone shot showed shown shut slept slid spoke spoken spun stood stuck struck swept swam swum
    swung took taken taught tore torn told thought threw thrown understood woke woken wore worn won wound wrote written
    """.split()
)
NON_CONTENT = DETERMINERS | NUMERALS | PRONOUNS | PREPOSITIONS | CONJUNCTIONS | AUXILIARIES | ADVERBS


def _verb_lemma_candidates(word: str) -> set[str]:
    """Possible base forms of `word` under regular English inflection (over-generating on purpose)."""
    candidates = {word}
    if word.endswith("ies"):
        candidates.add(word[:-3] + "y")
    if word.endswith("es"):
        candidates.add(word[:-2])
    if word.endswith("s"):
        candidates.add(word[:-1])
    for suffix in ("ed", "ing"):
        if word.endswith(suffix):
            stem = word[: -len(suffix)]
            candidates |= {stem, stem + "e"}
            if len(stem) >= 2 and stem[-1] == stem[-2]:  # running -> run, stopped -> stop
                candidates.add(stem[:-1])
            if stem.endswith("i"):  # carried -> carry
                candidates.add(stem[:-1] + "y")
    if word.endswith("d"):  # moved -> move
        candidates.add(word[:-1])
    return candidates


def is_verb_like(word: str) -> bool:
    """Whether a lower-case word looks like a verb form: a listed verb (any regular inflection) or irregular form."""
    return word in IRREGULAR_VERBS or bool(_verb_lemma_candidates(word) & VERBS)


def _is_adverb(word: str) -> bool:
    return word in ADVERBS or (word.endswith("ly") and len(word) > 4 and word not in LY_NOUNS)


class RuleBasedNounPhraseExtractor:
    """The default, model-free chunker described in this module's docstring. Deterministic and offline."""

    def __call__(self, caption: str) -> list[NounPhrase]:
        if not isinstance(caption, str):
            raise TypeError(f"caption must be a str, got {type(caption).__name__}")
        phrases: list[NounPhrase] = []
        chunk: list[tuple[int, int]] = []  # (start, end) of the words of the open chunk
        has_content = False
        after_determiner = False
        predicate = False  # inside "is/are ... " until a determiner, preposition or punctuation

        def close() -> None:
            nonlocal chunk, has_content, after_determiner
            if chunk and has_content:
                start, end = chunk[0][0], chunk[-1][1]
                phrases.append(NounPhrase(caption[start:end], start, end))
            chunk, has_content, after_determiner = [], False, False

        for match in _WORD.finditer(caption):
            token, start, end = match.group(0), match.start(), match.end()
            word = token.lower().replace("\u2019", "'")
            if not token[0].isalnum():  # punctuation
                close()
                predicate = False
                continue
            possessive = word.endswith("'s") and word not in AUXILIARIES
            if possessive:
                word, end = word[:-2], end - 2
            if word in DETERMINERS or word in NUMERALS or (word.isdigit()):
                if has_content:
                    close()
                chunk.append((start, end))
                after_determiner, predicate = True, False
                continue
            if word in AUXILIARIES:
                close()
                predicate = True
                continue
            if word in PRONOUNS or word in PREPOSITIONS or word in CONJUNCTIONS:
                close()
                predicate = predicate and word in CONJUNCTIONS  # "is tall and strong" stays a predicate
                continue
            if _is_adverb(word):
                close()
                continue
            verb = is_verb_like(word) or (not after_determiner and not has_content and word.endswith(("ing", "ed")))
            if predicate and not chunk:
                continue  # predicate adjective / participle: "is tall", "are dancing"
            if verb and not (after_determiner and not has_content) and not (chunk and not has_content):
                close()
                continue
            chunk.append((start, end))
            has_content = True
            after_determiner = False
            if possessive:  # "the man's hat": "the man" closes, "hat" starts a new chunk
                close()
        close()
        return phrases


class SpacyNounPhraseExtractor:
    """spaCy's `doc.noun_chunks` (dependency-based base NPs), pronoun chunks dropped.

    Needs `pip install spacy` and a pipeline with a parser (e.g. `python -m spacy download en_core_web_sm`, or a
    local path to one).
    """

    def __init__(self, model: str = "en_core_web_sm") -> None:
        try:
            import spacy
        except ImportError as error:
            raise ImportError(
                "SpacyNounPhraseExtractor needs spaCy: `pip install spacy` and an English pipeline"
            ) from error
        try:
            self.nlp = spacy.load(model)
        except OSError as error:
            raise OSError(f"spaCy pipeline {model!r} is not installed or not a valid path: {error}") from error

    def __call__(self, caption: str) -> list[NounPhrase]:
        doc = self.nlp(caption)
        return [
            NounPhrase(chunk.text, chunk.start_char, chunk.end_char)
            for chunk in doc.noun_chunks
            if chunk.root.pos_ != "PRON"
        ]


# Heads that name a place, direction, view or amount rather than a visible object ("the front", "the left",
# "the camera", "a lot"). The paper drops such "invalid phrases" after grounding; dropping them before grounding
# saves the detector a query that would at best ground something arbitrary.
NON_OBJECT_HEADS = frozenset(
    """
    front back left right top bottom side sides middle center centre end beginning edge corner direction way
    distance background foreground camera screen video clip scene shot view frame time times moment lot lots bit
    kind type sort number part rest one ones others other remainder close closeup close-up
    """.split()
)


@dataclass(frozen=True)
class NonObjectPhraseFilter:
    """Says why a phrase cannot name a trackable object, or None if it can.

    Reasons: "non_object" when the phrase's last word (its head, for English base NPs) is in `heads`,
    "no_content" when every word is a determiner/numeral/pronoun.
    """

    heads: frozenset[str] = NON_OBJECT_HEADS

    def __call__(self, phrase: NounPhrase) -> str | None:
        words = [w.lower().replace("\u2019", "'") for w in _WORD.findall(phrase.text) if w[0].isalnum()]
        content = [
            w for w in words if w not in DETERMINERS and w not in NUMERALS and w not in PRONOUNS and not w.isdigit()
        ]
        if not content:
            return "no_content"
        if content[-1] in self.heads:
            return "non_object"
        return None


def build_phrase_extractor(spec: str) -> NounPhraseExtractor:
    """`"rules"` -> the rule-based chunker; `"spacy"` or `"spacy:MODEL"` -> spaCy with that pipeline."""
    if spec == "rules":
        return RuleBasedNounPhraseExtractor()
    if spec == "spacy" or spec.startswith("spacy:"):
        model = spec.partition(":")[2] or "en_core_web_sm"
        return SpacyNounPhraseExtractor(model)
    raise ValueError(f"unknown noun-phrase extractor {spec!r}: expected 'rules', 'spacy' or 'spacy:MODEL'")
