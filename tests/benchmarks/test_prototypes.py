"""The prototypes generate exactly what the library generates: the cheaper decode step (bad_words_ids, cached
signature) and the compile-friendly one, whose decode fast path (taken under torch.compile; forced here without
compiling) changes nothing but the skipped placeholder count."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def question(tiny_model, make_video_prompt):
    ids = make_video_prompt(4)[None]
    features = torch.randn(1, 4, tiny_model.config.vision_feature_dim, generator=torch.Generator().manual_seed(0))
    return dict(input_ids=ids, video_features=features, max_new_tokens=5, min_new_tokens=5, do_sample=False,
                pad_token_id=0, return_dict_in_generate=True)


def _assert_same_generation(expected, actual):
    torch.testing.assert_close(actual.sequences, expected.sequences, rtol=0, atol=0)
    torch.testing.assert_close(actual.point_predictions, expected.point_predictions)
    torch.testing.assert_close(actual.trajectory_predictions, expected.trajectory_predictions)


@pytest.mark.parametrize("cache", [{}, {"cache_implementation": "static", "disable_compile": True}])
def test_prototype_generates_what_the_library_generates(bench, tiny_model, question, cache):
    prototype = bench("prototypes").compilable_copy(tiny_model)
    with torch.no_grad():
        expected = tiny_model.generate(**question, **cache)
        actual = prototype.generate(**question, **cache)
    assert actual.trajectory_predictions.shape == (1, 5, 3, 4, 2)
    _assert_same_generation(expected, actual)


def test_decode_fast_path_matches_the_checked_path(bench, tiny_model, question, monkeypatch):
    """Pretend every call without frames is compiled: decode steps take the fast path, prefill is still checked."""
    prototype = bench("prototypes")
    fast = prototype.compilable_copy(tiny_model)
    taken = []
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    real_forward = prototype.PiTeModel.forward

    def spy(self, *args, **kwargs):  # the checked path: PiTeModel.forward
        taken.append("checked")
        return real_forward(self, *args, **kwargs)

    monkeypatch.setattr(prototype.PiTeModel, "forward", spy)
    with torch.no_grad():
        actual = fast.generate(**question)
    monkeypatch.undo()
    with torch.no_grad():
        expected = tiny_model.generate(**question)
    assert taken == ["checked"]  # the prefill only; the 4 decode steps skipped the count
    _assert_same_generation(expected, actual)


def test_cheap_decode_step_generates_what_the_library_generates(bench, tiny_model, question):
    import inspect

    prototypes = bench("prototypes")
    cheap = prototypes.cheap_decode_copy(tiny_model)
    assert cheap.generation_config.suppress_tokens is None
    assert cheap.generation_config.bad_words_ids == [[tiny_model.config.video_token_id]]
    assert inspect.signature(cheap.forward) == inspect.signature(tiny_model.forward)
    with torch.no_grad():
        expected, actual = tiny_model.generate(**question), cheap.generate(**question)
    _assert_same_generation(expected, actual)
    # the video token stays out of the answer when it is the most likely token
    with torch.no_grad():
        cheap.lm_head.bias = torch.nn.Parameter(torch.zeros(cheap.config.text_config.vocab_size))
        cheap.lm_head.bias[cheap.config.video_token_id] = 1e4
        forced = cheap.generate(**question)
    assert (forced.sequences[0, question["input_ids"].shape[1]:] != cheap.config.video_token_id).all()


def test_prototype_keeps_the_librarys_refusals(bench, tiny_model, question):
    prototype = bench("prototypes").compilable_copy(tiny_model)
    with pytest.raises(ValueError, match="greedy search or sampling"):
        prototype.generate(**question, num_beams=2)
    with pytest.raises(TypeError, match="plain PiTeForConditionalGeneration"):
        bench("prototypes").compilable_copy(prototype)
