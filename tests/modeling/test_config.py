import pytest
import torch

from pite.modeling_pite import PiTeConfig, PiTeForConditionalGeneration

from ..conftest import TINY_VISION_CONFIG


def test_defaults_are_pite_7b():
    config = PiTeConfig()
    assert config.vision_config.hidden_size == 1024 and config.vision_config.num_hidden_layers == 24
    assert config.vision_config.image_size == 224 and config.vision_config.patch_size == 14
    assert config.text_config.hidden_size == 4096 and config.text_config.num_hidden_layers == 32
    assert config.text_config.vocab_size == 32001 and config.video_token_id == 32000
    assert config.num_frames == 100 and config.num_trajectory_points == 3
    # Sizes the original code hard-codes, derived from the config.
    assert config.vision_feature_dim == 768
    assert config.trajectory_dim == 600
    assert PiTeConfig(vision_feature="cls").vision_feature_dim == 1024


def test_real_size_model_on_meta_device_has_the_paper_parameter_count():
    config = PiTeConfig()
    with torch.device("meta"):
        model = PiTeForConditionalGeneration(config)
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731

    h, v, i, n_layers = 4096, 32001, 11008, 32
    llama_decoder = v * h + n_layers * (4 * h * h + 3 * h * i + 2 * h) + h
    assert count(model.model.language_model) == llama_decoder
    assert count(model.lm_head) == v * h
    vision = count(model.model.vision_tower)
    assert 300e6 < vision < 306e6  # CLIP ViT-L/14 vision tower + 1024->768 projection
    assert count(model.model.video_adapter) == 768 * h + h
    assert count(model.localization_head) == 2 * h + 2
    assert count(model.trajectory_head) == 600 * h + 600
    total = count(model)
    assert 6.7e9 < total - vision < 6.8e9  # "7B" Vicuna + adapter + heads
    assert 7.0e9 < total < 7.1e9


def test_vision_tower_frozen_by_default(tiny_model):
    assert not any(p.requires_grad for p in tiny_model.model.vision_tower.parameters())
    assert all(p.requires_grad for p in tiny_model.model.video_adapter.parameters())
    tiny_model.train()
    assert tiny_model.model.language_model.training and not tiny_model.model.vision_tower.training


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(vision_feature="patch"), "vision_feature"),
        (dict(num_frames=0), "num_frames"),
        (dict(video_token_id=64), "video_token_id=64 is outside"),
        (dict(label_smoothing=1.0), "label_smoothing"),
    ],
)
def test_invalid_config_values_are_rejected(make_tiny_config, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_tiny_config(**kwargs)


def test_config_round_trip(tmp_path, tiny_config):
    tiny_config.save_pretrained(tmp_path)
    loaded = PiTeConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == tiny_config.to_dict()
    assert loaded.auto_map["AutoModel"] == "modeling_pite.PiTeForConditionalGeneration"
    assert loaded.auto_map["AutoConfig"] == "configuration_pite.PiTeConfig"


def test_sub_config_source_paths_are_not_saved(tmp_path):
    from transformers import CLIPVisionConfig

    vision = CLIPVisionConfig(**TINY_VISION_CONFIG)
    vision._name_or_path = "/data/checkpoints/clip-vit-large-patch14"
    config = PiTeConfig(vision_config=vision, video_token_id=32000)
    config.save_pretrained(tmp_path)
    assert "/data/checkpoints" not in (tmp_path / "config.json").read_text()
    assert config.vision_config.hidden_size == 32


def test_sub_config_of_the_wrong_kind_is_rejected():
    from transformers import LlamaConfig

    with pytest.raises(TypeError, match="expected a CLIPVisionConfig"):
        PiTeConfig(vision_config=LlamaConfig())
