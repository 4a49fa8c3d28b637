"""Timing helpers, result records, the table, and the saved-activation count."""

from __future__ import annotations

import math

import pytest
import torch


def test_timed_alternating_runs_round_robin_and_returns_each_median(bench, monkeypatch):
    measure = bench("measure")
    calls = []
    # each call lasts: a -> 1, 5, 3 ticks; b -> 2, 2, 9 ticks (the fake clock advances by the scripted durations)
    durations = {"a": iter([1, 5, 3]), "b": iter([2, 2, 9])}
    now = [0.0]

    def fake_clock():
        return now[0]

    def make(name):
        def function():
            calls.append(name)
            if len(calls) > 2:  # after the warm-up round
                now[0] += next(durations[name])

        return function

    monkeypatch.setattr(measure.time, "perf_counter", fake_clock)
    medians = measure.timed_alternating({"a": make("a"), "b": make("b")}, repeats=3, warmup=1)
    assert calls == ["a", "b"] * 4
    assert medians == {"a": 3.0, "b": 2.0}


def test_timed_alternating_rejects_bad_arguments(bench):
    measure = bench("measure")
    with pytest.raises(ValueError, match="repeats"):
        measure.timed_alternating({"a": lambda: None}, repeats=0)
    with pytest.raises(ValueError, match="at least one"):
        measure.timed_alternating({})


def test_result_records_validate_their_ratio(bench):
    measure = bench("measure")
    with pytest.raises(ValueError, match="finite"):
        measure.result("x", math.nan, "a / b", {}, "")
    with pytest.raises(ValueError, match="needs a ratio"):
        measure.result("x", None, "absolute", {}, "", target=1.1)
    record = measure.result("x", 1, "a / b", {"a_s": 2.0}, "setting", target=1.1)
    assert record["ratio"] == 1.0 and measure.meets_target(record) is True
    assert measure.meets_target(measure.result("x", 1.2, "a / b", {}, "", target=1.1)) is False
    assert measure.meets_target(measure.result("x", 5.0, "a / b", {}, "")) is None


def test_format_table_marks_targets_skips_and_failures(bench):
    measure = bench("measure")
    table = measure.format_table(
        [
            measure.result(
                "overhead", 1.05, "PiTe / Llama", {"pite_s": 1.23456789, "tokens": 521}, "fwd+bwd", target=1.1
            ),
            measure.result("generation", 1.2, "PiTe / Llama", {}, "decode", target=1.1),
            measure.result(
                "gpu prefill", None, "absolute (GPU)", {"latency_s": 0.5, "faster": "sequential"}, "100 frames"
            ),
            measure.skipped("gpu", "no CUDA device"),
            measure.failed("video", ValueError("broken file")),
        ]
    ).splitlines()
    assert table[0].startswith("| row | ratio |") and len(table) == 7
    assert "| overhead | 1.050 (meets) | PiTe / Llama | <= 1.1 | pite_s=1.235, tokens=521 | fwd+bwd |" == table[2]
    assert "1.200 (MISSES)" in table[3]
    assert table[4].startswith("| gpu prefill | - | absolute (GPU) | - | latency_s=0.5, faster=sequential |")
    assert table[5] == "| gpu | - | skipped | - | no CUDA device | |"
    assert table[6] == "| video | - | FAILED | - | ValueError: broken file | |"


def test_saved_activation_bytes_shows_what_checkpointing_frees(bench, tiny_model, make_video_prompt):
    measure, models = bench("measure"), bench("models")
    ids = make_video_prompt(4)[None].repeat(1, 4)  # 40 tokens, 16 placeholders
    features = torch.randn(1, 16, tiny_model.config.vision_feature_dim)
    tiny_model.train()

    def loss(model):
        return lambda: model(input_ids=ids, video_features=features, labels=ids, use_cache=False).loss

    plain, out = measure.saved_activation_bytes(loss(tiny_model), tiny_model.parameters())
    out.backward()
    tiny_model.zero_grad()
    models.enable_checkpointing(tiny_model)
    checkpointed, out = measure.saved_activation_bytes(loss(tiny_model), tiny_model.parameters())
    out.backward()
    assert 0 < checkpointed < plain
    everything, _ = measure.saved_activation_bytes(loss(tiny_model))
    assert everything > checkpointed  # parameters are counted when not excluded


def test_prompt_ids_and_sizes(bench):
    models = bench("models")
    sizes = models.BenchSizes().replace({"vocab_size": "50", "batch_sizes": "1,3", "num_frames": "5"})
    assert sizes.video_token_id == 49 and sizes.batch_sizes == (1, 3)
    ids = models.prompt_ids(sizes, 5, 12)
    assert ids.shape == (1, 1 + 5 + 12) and ids[0, 0] == 1
    assert (ids == 49).sum() == 5 and (ids[0, 9:14] == 49).all()
    assert ((ids[0, 1:] >= 3) & (ids[0, 1:] <= 49)).all()
    plain = models.as_plain_text(ids, sizes)
    assert (plain != 49).all() and (plain[0, 9:14] == 48).all()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"hidden": "3"}, "unknown benchmark size 'hidden'"),
        ({"num_layers": "two"}, "num_layers='two' is not an integer"),
        ({"batch_sizes": "1,x"}, "batch_sizes='1,x' is not an integer list"),
        ({"image_size": "30"}, "multiple of the 14-pixel patch"),
        ({"repeats": "0"}, "repeats must be a positive integer"),
        ({"hidden_size": "30"}, "must divide by num_heads"),
    ],
)
def test_bad_sizes_are_named(bench, overrides, message):
    with pytest.raises(ValueError, match=message):
        bench("models").BenchSizes().replace(overrides)
