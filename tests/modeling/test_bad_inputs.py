"""Bad inputs to the model get a clear error naming the input and the value (or, for a batch with nothing
supervised, a one-time warning), never a NaN loss, a silent 0 or an error from deep inside torch."""

from __future__ import annotations

import logging

import pytest
import torch
from transformers.utils import logging as transformers_logging

from pite.modeling_pite import PiTeForConditionalGeneration


def _features(batch=1, frames=4):
    return torch.randn(batch, frames, 24, generator=torch.Generator().manual_seed(2))


def _video(batch=1, frames=4):
    return torch.randn(batch, frames, 3, 28, 28, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_video_features_name_the_first_frame(tiny_model, make_video_prompt, bad):
    features = _features(2)
    features[1, 2, 5] = bad
    features[1, 3, 0] = bad
    with pytest.raises(ValueError, match=r"video_features holds non-finite values .*video 1, frame 2 \(2 such frames"):
        tiny_model(input_ids=make_video_prompt(4).repeat(2, 1), video_features=features)


def test_non_finite_pixels_name_the_first_frame(tiny_model, make_video_prompt):
    pixels = _video()
    pixels[0, 3, 1, 10, 10] = float("nan")
    with pytest.raises(ValueError, match=r"pixel_values_videos holds non-finite values .*video 0, frame 3"):
        tiny_model(input_ids=make_video_prompt(4)[None], pixel_values_videos=pixels)


def test_non_finite_image_pixels_name_the_image(tiny_model, make_video_prompt):
    images = _video(3)[:, 0]
    images[2, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"pixel_values holds non-finite values .*image 2 \(1 such images"):
        tiny_model(input_ids=make_video_prompt(1).repeat(3, 1), pixel_values=images)


def test_non_finite_features_in_generate_are_named(tiny_model, make_video_prompt):
    features = _features()
    features[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="video_features holds non-finite values"):
        tiny_model.generate(
            input_ids=make_video_prompt(4)[None], video_features=features, max_new_tokens=2, pad_token_id=0
        )


def test_finite_inputs_still_train(tiny_model, make_video_prompt):
    ids = make_video_prompt(4)[None]
    loss = tiny_model(input_ids=ids, video_features=_features(), labels=ids).loss
    assert torch.isfinite(loss)


def _warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if "supervise no token" in r.getMessage()]


def test_labels_with_nothing_supervised_warn_once(make_tiny_config, make_video_prompt, caplog):
    """A fully masked micro-batch is legitimate in data-parallel training (every answer truncated away), so this is a
    warning, not an error; the warning says the 0 is not a perfect score. Once per process: transformers'
    warning_once."""
    torch.manual_seed(0)
    model = PiTeForConditionalGeneration(make_tiny_config()).eval()
    ids = make_video_prompt(4)[None]
    nothing = torch.full_like(ids, -100)
    nothing[0, 0] = 7  # the first label is never read (nothing predicts token 0): still nothing supervised
    transformers_logger = logging.getLogger("transformers")
    transformers_logger.addHandler(caplog.handler)
    try:
        # warning_once remembers messages per process (one cache for every transformers logger): start clean.
        transformers_logging.get_logger("pite").warning_once.cache_clear()
        with caplog.at_level(logging.WARNING):
            first = model(input_ids=ids, video_features=_features(), labels=nothing)
            model(input_ids=ids, video_features=_features(), labels=nothing)
            supervised = model(input_ids=ids, video_features=_features(), labels=ids)
    finally:
        transformers_logger.removeHandler(caplog.handler)
    messages = _warnings_of(caplog)
    assert len(messages) == 1 and "lm_loss is 0 for this batch" in messages[0]
    assert first.lm_loss.item() == 0.0
    assert supervised.lm_loss.item() > 0


@pytest.mark.parametrize("value", [1.5, -0.25, float("nan")])
def test_point_targets_outside_the_unit_square_are_refused(tiny_model, make_video_prompt, value):
    ids = make_video_prompt(4)[None]
    point_labels = torch.full((1, ids.shape[1], 2), -1.0)
    point_labels[0, 8] = torch.tensor([0.5, value])
    with pytest.raises(ValueError, match=rf"point_labels\[0, 8, 1\] = {value} is outside \[0, 1\]"):
        tiny_model(input_ids=ids, video_features=_features(), point_labels=point_labels)


def test_trajectory_targets_outside_the_unit_square_are_refused(tiny_model, make_video_prompt):
    ids = make_video_prompt(4)[None]
    targets = torch.full((1, ids.shape[1], 3, 4, 2), -1.0)
    targets[0, 9] = 0.5
    targets[0, 9, 2, 1, 0] = 2.0
    with pytest.raises(ValueError, match=r"trajectory_labels\[0, 9, 2, 1, 0\] = 2.0 is outside \[0, 1\]"):
        tiny_model(input_ids=ids, video_features=_features(), trajectory_labels=targets)


def test_absent_sentinel_bounds_and_masked_targets_are_accepted(tiny_model, make_video_prompt):
    ids = make_video_prompt(4)[None]
    point_labels = torch.full((1, ids.shape[1], 2), -1.0)  # the absent sentinel everywhere
    point_labels[0, 7] = torch.tensor([0.0, 1.0])  # the bounds themselves
    point_labels[0, 8] = torch.tensor([3.0, 3.0])  # out of range, but masked out
    mask = torch.ones(1, ids.shape[1], dtype=torch.bool)
    mask[0, 8] = False
    out = tiny_model(input_ids=ids, video_features=_features(), point_labels=point_labels, point_mask=mask)
    assert torch.isfinite(out.localization_loss)


def test_empty_input_ids_are_refused(tiny_model):
    with pytest.raises(ValueError, match=r"input_ids is empty \(shape \(1, 0\)\)"):
        tiny_model(input_ids=torch.zeros(1, 0, dtype=torch.long))


@pytest.mark.parametrize("bad", [64, 1000, -3])
def test_token_ids_outside_the_vocabulary_are_named(tiny_model, make_video_prompt, bad):
    ids = make_video_prompt(4)[None].clone()
    ids[0, -1] = bad
    with pytest.raises(ValueError, match=rf"input_ids holds token id {bad}, outside the vocabulary \[0, 64\)"):
        tiny_model(input_ids=ids, video_features=_features())
    with pytest.raises(ValueError, match=rf"input_ids holds token id {bad}"):
        tiny_model.generate(input_ids=ids, video_features=_features(), max_new_tokens=2, pad_token_id=0)


def test_placeholder_mismatch_is_caught_under_torch_compile(tiny_model, make_video_prompt):
    """Compiled, the host-reading prompt checks are skipped; the placeholder count stays a graph assert rather than a
    silent misplacement of frame features."""
    import torch._dynamo

    compiled = torch.compile(tiny_model, backend="eager")
    try:
        with torch.no_grad():
            compiled(input_ids=make_video_prompt(4)[None], video_features=_features())  # consistent: runs
            with pytest.raises(RuntimeError):
                compiled(input_ids=make_video_prompt(3)[None], video_features=_features())
    finally:
        torch._dynamo.reset()


def test_from_pretrained_of_truncated_weights_names_the_file(tiny_model, tmp_path):
    """safetensors' own error names no file; a user must learn which file to fetch again."""
    from pite.modeling_pite import PiTeForConditionalGeneration

    tiny_model.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError, match=r"model\.safetensors: the weights are truncated or corrupted"):
        PiTeForConditionalGeneration.from_pretrained(tmp_path)
