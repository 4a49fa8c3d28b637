"""PiTe follows transformers' model conventions: `BaseModelOutputWithPooling` from `get_video_features`, vision-tower
outputs in the model output, `return_dict` / `config.return_dict`, `shift_labels`, a tensor-parallel plan covering the
tied `lm_head`, and transformers' deprecation warning for `past_key_values`."""

from __future__ import annotations

import copy
import re
import warnings

import pytest
import torch
import torch.nn.functional as F
from transformers.modeling_outputs import BaseModelOutputWithPooling

from pite.modeling_pite import PiTeForConditionalGeneration


def _video(batch=1, frames=4):
    return torch.randn(batch, frames, 3, 28, 28, generator=torch.Generator().manual_seed(1))


def test_get_video_features_returns_base_model_output_with_pooling(tiny_model):
    vision = tiny_model.config.vision_config
    tiny_model.set_attn_implementation("eager")  # SDPA returns no attention weights
    with torch.no_grad():
        out = tiny_model.get_video_features(_video(2), output_hidden_states=True, output_attentions=True)
        plain = tiny_model.get_video_features(_video(2))
        as_tuple = tiny_model.get_video_features(_video(2), return_dict=False)
    assert isinstance(out, BaseModelOutputWithPooling)
    tokens = (vision.image_size // vision.patch_size) ** 2 + 1
    assert out.pooler_output.shape == (2, 4, tiny_model.config.vision_feature_dim)
    assert out.last_hidden_state.shape == (2, 4, tokens, vision.hidden_size)
    assert len(out.hidden_states) == vision.num_hidden_layers + 1
    assert out.hidden_states[-1].shape == (2, 4, tokens, vision.hidden_size)
    assert len(out.attentions) == vision.num_hidden_layers
    assert out.attentions[0].shape == (2, 4, vision.num_attention_heads, tokens, tokens)
    assert plain.hidden_states is None and plain.attentions is None
    assert isinstance(as_tuple, tuple)
    torch.testing.assert_close(as_tuple[1], out.pooler_output, rtol=0, atol=0)


def test_vision_tower_outputs_are_returned(tiny_model, make_video_prompt):
    with torch.no_grad():
        video = tiny_model(
            input_ids=make_video_prompt(4)[None], pixel_values_videos=_video(), output_hidden_states=True
        )
        image = tiny_model(input_ids=make_video_prompt(1)[None], pixel_values=_video()[:, 0])
        features = tiny_model(input_ids=make_video_prompt(4)[None], video_features=torch.randn(1, 4, 24))
    assert video.image_outputs is None and video.video_outputs.pooler_output.shape == (1, 4, 24)
    assert len(video.video_outputs.hidden_states) == tiny_model.config.vision_config.num_hidden_layers + 1
    assert len(video.hidden_states) == tiny_model.config.text_config.num_hidden_layers + 1
    assert image.video_outputs is None and image.image_outputs.pooler_output.shape == (1, 1, 24)
    assert features.image_outputs is None and features.video_outputs is None  # no tower ran


@pytest.mark.parametrize("through", ["argument", "config"])
def test_return_dict_false_is_honoured(tiny_model, make_video_prompt, through):
    ids = make_video_prompt(4)[None]
    features = torch.randn(1, 4, 24)
    with torch.no_grad():
        expected = tiny_model(input_ids=ids, video_features=features)
        expected_hidden = tiny_model.model(input_ids=ids, video_features=features).last_hidden_state
        if through == "config":
            tiny_model.config.return_dict = False
        kwargs = {"return_dict": False} if through == "argument" else {}
        out = tiny_model(input_ids=ids, video_features=features, **kwargs)
        base = tiny_model.model(input_ids=ids, video_features=features, **kwargs)
    assert isinstance(out, tuple) and isinstance(base, tuple)
    torch.testing.assert_close(out[0], expected.logits, rtol=0, atol=0)
    torch.testing.assert_close(base[0], expected_hidden, rtol=0, atol=0)


def test_shift_labels_drive_the_token_loss(tiny_model, make_video_prompt):
    """Context parallelism hands each shard labels already shifted, the shard's last position included."""
    ids = make_video_prompt(4)[None]
    features = torch.randn(1, 4, 24)
    labels = ids.masked_fill(ids == tiny_model.config.video_token_id, -100)
    shift_labels = torch.cat([labels[:, 1:], torch.tensor([[5]])], dim=1)  # last position: next shard's first token
    with torch.no_grad():
        plain = tiny_model(input_ids=ids, video_features=features, labels=labels)
        shifted = tiny_model(input_ids=ids, video_features=features, shift_labels=shift_labels)
        both = tiny_model(
            input_ids=ids, video_features=features, labels=torch.full_like(ids, -100), shift_labels=shift_labels
        )
    expected = F.cross_entropy(plain.logits[0].float(), shift_labels[0], ignore_index=-100)
    torch.testing.assert_close(shifted.loss, expected)
    torch.testing.assert_close(both.loss, expected)  # shift_labels win over labels, as in transformers
    assert not torch.allclose(shifted.loss, plain.loss)  # the extra last-position label counts


def test_shift_labels_with_regression_targets_are_refused(tiny_model, make_video_prompt):
    ids = make_video_prompt(4)[None]
    with pytest.raises(ValueError, match="shift_labels.*point_labels and trajectory_labels"):
        tiny_model(
            input_ids=ids,
            video_features=torch.randn(1, 4, 24),
            shift_labels=ids,
            point_labels=torch.full((1, ids.shape[1], 2), -1.0),
        )


def test_tensor_parallel_plan_covers_the_tied_lm_head(tiny_model):
    plan = tiny_model.tp_plan
    assert plan.get("lm_head") == "colwise_gather_output"
    names = [name for name, _ in tiny_model.named_modules()]
    for pattern in plan:
        regex = re.compile(re.escape(pattern).replace(r"\*", r"\d+") + "$")
        assert any(regex.match(name) for name in names), f"tp_plan rule {pattern!r} names no module"
    assert any(pattern.startswith("model.language_model.layers.") for pattern in plan)


def test_past_key_values_gives_transformers_deprecation_warning(tiny_model, make_video_prompt):
    ids = make_video_prompt(4)[None]
    with torch.no_grad():
        prefill = tiny_model(input_ids=ids, video_features=torch.randn(1, 4, 24), use_cache=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # `cache=` is the current name: no warning
            by_new_name = tiny_model(input_ids=ids[:, -1:], cache=copy.deepcopy(prefill.cache), use_cache=True)
        with pytest.warns(FutureWarning, match="`past_key_values` is deprecated.*Use `cache` instead"):
            by_old_name = tiny_model(
                input_ids=ids[:, -1:], past_key_values=copy.deepcopy(prefill.cache), use_cache=True
            )
    torch.testing.assert_close(by_old_name.logits, by_new_name.logits, rtol=0, atol=0)


def test_generate_with_return_dict_in_generate_and_config_return_dict_false(tiny_model, make_video_prompt):
    tiny_model.config.return_dict = False
    out = tiny_model.generate(
        input_ids=make_video_prompt(4)[None],
        video_features=torch.randn(1, 4, 24),
        max_new_tokens=3,
        min_new_tokens=3,
        pad_token_id=0,
        return_dict_in_generate=True,
    )
    assert out.point_predictions.shape == (1, 3, 2)


def test_missing_weights_outside_the_tower_initialise_as_in_init(make_tiny_config, monkeypatch):
    """Weights missing from a checkpoint are initialised as a fresh model's are: adapter, language model, the three
    heads (the trajectory head by eq. 9 from the localization head). Seeded per module, as transformers' own test."""
    from transformers import PreTrainedModel, set_seed

    initialize = PreTrainedModel._initialize_weights

    def seeded(*args, **kwargs):
        set_seed(42)
        initialize(*args, **kwargs)

    monkeypatch.setattr(PreTrainedModel, "_initialize_weights", seeded)
    config = make_tiny_config()
    fresh = PiTeForConditionalGeneration(copy.deepcopy(config)).state_dict()
    from_meta = PiTeForConditionalGeneration.from_pretrained(None, config=copy.deepcopy(config), state_dict={})
    differing = [
        name
        for name, value in from_meta.state_dict().items()
        if not name.startswith("model.vision_tower.") and not torch.equal(value, fresh[name])
    ]
    assert differing == []
    repeats = config.num_trajectory_points * config.num_frames
    torch.testing.assert_close(from_meta.trajectory_head.weight, from_meta.localization_head.weight.repeat(repeats, 1))


def test_torch_export_matches_eager(tiny_model, make_video_prompt):
    """transformers' ExportTesterMixin is not in its sdist: the same behaviour here. The prompt checks, which read
    values back to the host, stay out of the exported graph."""
    inputs = dict(input_ids=make_video_prompt(4)[None], pixel_values_videos=_video(), use_cache=False)
    with torch.no_grad():
        exported = torch.export.export(tiny_model, (), inputs)
        out, expected = exported.module()(**inputs), tiny_model(**inputs)
    for name in ("logits", "point_predictions", "trajectory_predictions"):
        torch.testing.assert_close(out[name], expected[name], rtol=0, atol=1e-5)
