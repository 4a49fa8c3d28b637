"""The library's decode step, as the `generation`, `compile` and `gpu` rows rely on it: `<video>` kept out of
answers by `bad_words_ids`, a forward signature computed once, and a decode step that torch.compile captures whole
(one graph, no graph break, no recompilation per step) and that generates what eager decoding generates."""

from __future__ import annotations

import inspect

import pytest
import torch


@pytest.fixture
def question(tiny_model, make_video_prompt):
    ids = make_video_prompt(4)[None]
    features = torch.randn(1, 4, tiny_model.config.vision_feature_dim, generator=torch.Generator().manual_seed(0))
    return dict(
        input_ids=ids,
        video_features=features,
        max_new_tokens=5,
        min_new_tokens=5,
        do_sample=False,
        pad_token_id=0,
        return_dict_in_generate=True,
    )


def test_video_token_is_kept_out_by_bad_words_ids(tiny_model, question):
    video = tiny_model.config.video_token_id
    assert tiny_model.generation_config.bad_words_ids == [[video]]
    assert not tiny_model.generation_config.suppress_tokens  # rebuilt every step: not used
    with torch.no_grad():
        tiny_model.lm_head.bias = torch.nn.Parameter(torch.zeros(tiny_model.config.text_config.vocab_size))
        tiny_model.lm_head.bias[video] = 1e4  # <video> is by far the most likely token at every step
        forced = tiny_model.generate(**question)
    answer = forced.sequences[0, question["input_ids"].shape[1] :]
    assert len(answer) == 5 and (answer != video).all()


def test_forward_signature_is_computed_once_and_current(monkeypatch):
    """transformers inspects a remote-code model's forward on every decode step; the library stores the signature
    on the function. It must be the signature of the code as it is."""
    from pite.modeling_pite import PiTeForConditionalGeneration

    forward = PiTeForConditionalGeneration.forward
    stored = vars(forward).get("__signature__")
    assert stored is not None
    monkeypatch.delattr(forward, "__signature__")
    assert stored == inspect.signature(forward)  # recomputed from the code
    assert {"pixel_values_videos", "video_features", "cache", "past_key_values"} <= set(stored.parameters)


def test_compiled_decode_step_is_one_graph_and_generates_what_eager_does(bench, tiny_model, question):
    """dynamo (backend "eager": traced, no code generated) captures the decode step in one graph without breaks,
    through a static-cache generate() of 5 tokens: no host sync on the placeholder count, no per-step recompilation
    on a recorder list."""
    import torch._dynamo

    fast_paths, measure = bench("fast_paths"), bench("measure")
    static = dict(cache_implementation="static")
    with torch.no_grad():
        eager = tiny_model.generate(**question, disable_compile=True, **static)
        torch._dynamo.reset()
        measure.clear_dynamo_counts()
        try:
            compiled = tiny_model.generate(**question, compile_config=fast_paths.compile_config("eager"), **static)
            counts = measure.dynamo_counts()
        finally:
            torch._dynamo.reset()
    assert counts == {"graphs": 1, "graph_breaks": 0}
    assert torch.equal(compiled.sequences, eager.sequences)
    assert compiled.trajectory_predictions.shape == (1, 5, 3, 4, 2)
    torch.testing.assert_close(compiled.trajectory_predictions, eager.trajectory_predictions)
    torch.testing.assert_close(compiled.point_predictions, eager.point_predictions)
