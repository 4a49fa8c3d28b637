"""PiTe configuration.

Hub remote code: this file is copied flat next to `config.json`; it imports only transformers.
"""

from __future__ import annotations

from typing import Any

from transformers import CLIPVisionConfig, LlamaConfig, PretrainedConfig

# CLIP ViT-L/14 at 224x224 (openai/clip-vit-large-patch14), the paper's frozen frame encoder.
CLIP_VIT_L_14_224 = dict(
    hidden_size=1024,
    intermediate_size=4096,
    projection_dim=768,
    num_hidden_layers=24,
    num_attention_heads=16,
    image_size=224,
    patch_size=14,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
)

# Vicuna-7B v1.5 (lmsys/vicuna-7b-v1.5), plus one row for the `<video>` special token (id 32000).
VICUNA_7B_V1_5 = dict(
    vocab_size=32001,
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    max_position_embeddings=4096,
    rms_norm_eps=1e-5,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
    tie_word_embeddings=False,
)

VISION_FEATURES = ("image_embeds", "cls")
# `absent_targets`: regress the absent coordinate at supervised text positions (the release), or mask it out.
ABSENT_TARGET_MODES = ("regress", "mask")
AUTO_MODEL_CLASSES = ("AutoModel", "AutoModelForCausalLM", "AutoModelForImageTextToText")


class PiTeConfig(PretrainedConfig):
    r"""Configuration of a PiTe model: a frozen CLIP vision tower, a linear adapter and a Llama language model
    with a vocabulary head, a localization head and a trajectory head.

    Defaults describe PiTe-7B (CLIP ViT-L/14 at 224, Vicuna-7B v1.5).

    Args:
        vision_config (`CLIPVisionConfig` or `dict`, *optional*): the frame encoder. Defaults to ViT-L/14 at 224.
        text_config (`LlamaConfig` or `dict`, *optional*): the language model. Defaults to Vicuna-7B v1.5 sizes
            with a 32001-row vocabulary (`<video>` appended).
        num_frames (`int`, defaults to 100): frames sampled per video (N); also the trajectory head's time axis.
        num_trajectory_points (`int`, defaults to 3): key points per object (P).
        coordinate_dim (`int`, defaults to 2): coordinates per point (x, y).
        vision_feature (`str`, defaults to `"image_embeds"`): which per-frame CLIP feature feeds the adapter.
            `"image_embeds"`: the projected pooled CLS vector (`projection_dim`, 768 for ViT-L/14), as the official
            checkpoints use. `"cls"`: the raw post-layernorm CLS vector (`hidden_size`).
        video_token_id (`int`, defaults to 32000): id of the `<video>` placeholder token (one per frame).
        freeze_vision_tower (`bool`, defaults to True): the paper keeps CLIP frozen; its features are then computed
            without autograd.
        localization_loss_weight (`float`, defaults to 1.0): lambda, the weight of the point and trajectory L1 terms.
            The paper does not report it; 1.0 keeps the L1 (normalised coordinates, about 0.1-0.5 early in training)
            on the scale of the token cross-entropy.
        label_smoothing (`float`, defaults to 0.0): label smoothing of the token cross-entropy (stage 3 uses 0.1).
        absent_targets (`str`, defaults to `"regress"`): what the L1 terms do where there is no target.
            `"regress"` (the authors' release, with which the released weights were trained): every supervised text
            position regresses its target, and (-1, -1) (`losses_pite.ABSENT_COORDINATE`, the data files' sentinel,
            fixed by the formats the model is trained on) where its token names no object or the object is
            absent from a frame, so the model says "nothing here" by predicting (-1, -1); prompt, video and padding
            positions never count. `"mask"`: only present targets count (the model never learns absence; pass
            `phrases=` to `post_process_generation`).
    """

    model_type = "pite"
    sub_configs = {"vision_config": CLIPVisionConfig, "text_config": LlamaConfig}

    def __init__(
        self,
        vision_config: CLIPVisionConfig | dict | None = None,
        text_config: LlamaConfig | dict | None = None,
        num_frames: int = 100,
        num_trajectory_points: int = 3,
        coordinate_dim: int = 2,
        vision_feature: str = "image_embeds",
        video_token_id: int = 32000,
        freeze_vision_tower: bool = True,
        localization_loss_weight: float = 1.0,
        label_smoothing: float = 0.0,
        absent_targets: str = "regress",
        tie_word_embeddings: bool = False,
        **kwargs: Any,
    ) -> None:
        self.vision_config = _as_config(vision_config, CLIPVisionConfig, CLIP_VIT_L_14_224)
        self.text_config = _as_config(text_config, LlamaConfig, VICUNA_7B_V1_5)
        if vision_feature not in VISION_FEATURES:
            raise ValueError(f"vision_feature must be one of {VISION_FEATURES}, got {vision_feature!r}")
        for name, value in (
            ("num_frames", num_frames),
            ("num_trajectory_points", num_trajectory_points),
            ("coordinate_dim", coordinate_dim),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0 <= video_token_id < self.text_config.vocab_size:
            raise ValueError(
                f"video_token_id={video_token_id} is outside the language model's vocabulary "
                f"(text_config.vocab_size={self.text_config.vocab_size}); add the <video> token and resize first"
            )
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.num_frames = num_frames
        self.num_trajectory_points = num_trajectory_points
        self.coordinate_dim = coordinate_dim
        self.vision_feature = vision_feature
        self.video_token_id = video_token_id
        self.freeze_vision_tower = freeze_vision_tower
        self.localization_loss_weight = localization_loss_weight
        self.label_smoothing = label_smoothing
        if absent_targets not in ABSENT_TARGET_MODES:
            raise ValueError(f"absent_targets must be one of {ABSENT_TARGET_MODES}, got {absent_targets!r}")
        self.absent_targets = absent_targets
        # One model class serves every Auto class users reach for; `register_for_auto_class` keeps only one name.
        kwargs.setdefault(
            "auto_map", {name: "modeling_pite.PiTeForConditionalGeneration" for name in AUTO_MODEL_CLASSES}
        )
        kwargs["auto_map"].setdefault("AutoConfig", "configuration_pite.PiTeConfig")
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)

    @property
    def vision_feature_dim(self) -> int:
        """Width of the per-frame feature the adapter reads (768 for ViT-L/14 `image_embeds`)."""
        if self.vision_feature == "image_embeds":
            return self.vision_config.projection_dim
        return self.vision_config.hidden_size

    @property
    def trajectory_dim(self) -> int:
        """Output width of the trajectory head: P * N * coordinate_dim (3 * 100 * 2 = 600 by default)."""
        return self.num_trajectory_points * self.num_frames * self.coordinate_dim


def _as_config(value: PretrainedConfig | dict | None, config_class: type, defaults: dict) -> PretrainedConfig:
    if value is None:
        return config_class(**defaults)
    if isinstance(value, PretrainedConfig) and not isinstance(value, config_class):
        raise TypeError(f"expected a {config_class.__name__} or a dict, got {type(value).__name__}")
    if isinstance(value, config_class):
        value = value.to_dict()
    if isinstance(value, dict):
        # A sub-config loaded from a local folder remembers that folder: never carry it into a saved PiTe config.
        value = {k: v for k, v in value.items() if k not in ("model_type", "_name_or_path", "name_or_path")}
        return config_class(**value)
    raise TypeError(f"expected a {config_class.__name__} or a dict, got {type(value).__name__}")
