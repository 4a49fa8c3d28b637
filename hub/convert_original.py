"""`pite convert-original`: the authors' release (base Vicuna + CLIP + three LoRA stage folders) -> this format.

The release (GitHub yliu-cs/PiTe, `inference.py` / `utils/misc.py`) loads a checkpoint this way, and so do we:

1. the base Vicuna as a LlamaForCausalLM whose `model` also holds `vision_adapter` (Linear 768->hidden),
   `localization_projector` (Linear hidden->2) and `trajectory_projector` (Linear hidden->P*N*2);
2. `vision_adapter.bin` of stage 2, else of stage 1, into `model.vision_adapter` (keys: anything containing
   "vision_adapter", the rest after "vision_adapter.");
3. for stage 1, 2, 3 in turn: that stage's `non_lora_trainables.bin` (keys lose a leading "base_model.", then, if
   any key starts "model.model.", a leading "model."), then its LoRA adapter, merged into the weights.

The merged model is then mapped to PiTe's names (`model.vision_adapter` -> `model.video_adapter`,
`model.localization_projector` -> `localization_head`, `model.trajectory_projector` -> `trajectory_head`,
the Llama decoder -> `model.language_model`). The release has no video token (it splices frame features at a
negative placeholder id in a 32000-row vocabulary); we add `<video>` to the tokenizer and one embedding and lm_head
row for it, leaving the original rows unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from transformers import LlamaForCausalLM

from pite.core.errors import MissingInputError
from pite.core.inputs import check_output_folder, check_safetensors_file, reading

from .assemble import load_image_processor, load_language_model, load_tokenizer, load_vision_tower
from .build import build_checkpoint
from .files import load_weights_file, require_directory

NON_LORA_FILE = "non_lora_trainables.bin"
VISION_ADAPTER_FILE = "vision_adapter.bin"
ADAPTER_CONFIG_FILE = "adapter_config.json"
ADAPTER_WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
# original module (on the LlamaForCausalLM's `.model`) -> PiTe module
ORIGINAL_TO_PITE_MODULES = {
    "vision_adapter": "model.video_adapter",
    "localization_projector": "localization_head",
    "trajectory_projector": "trajectory_head",
}


def normalise_non_lora_keys(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The release's key rule: drop "base_model.", then, if any key starts "model.model.", drop one "model."."""
    weights = {(k[len("base_model.") :] if k.startswith("base_model.") else k): v for k, v in weights.items()}
    if any(k.startswith("model.model.") for k in weights):
        weights = {(k[len("model.") :] if k.startswith("model.") else k): v for k, v in weights.items()}
    return weights


def vision_adapter_weights(path: Path) -> dict[str, torch.Tensor]:
    """{"weight", "bias"} of the adapter from a `vision_adapter.bin` (the release's `get_w(..., "vision_adapter")`)."""
    weights = {k.split("vision_adapter.")[1]: v for k, v in load_weights_file(path).items() if "vision_adapter." in k}
    if set(weights) != {"weight", "bias"}:
        raise ValueError(
            f"{path}: expected vision_adapter weight and bias, found {sorted(weights) or 'no adapter keys'}"
        )
    return weights


def original_layout_model(
    base_dir: Path, dtype: torch.dtype, feature_dim: int, trajectory_dim: int
) -> LlamaForCausalLM:
    """The base LM with the release's three extra Linear modules on `.model`, filled with NaN until loaded."""
    model = load_language_model(base_dir, dtype)
    hidden = model.config.hidden_size
    shapes = {
        "vision_adapter": (feature_dim, hidden),
        "localization_projector": (hidden, 2),
        "trajectory_projector": (hidden, trajectory_dim),
    }
    for name, (in_features, out_features) in shapes.items():
        module = nn.Linear(in_features, out_features, dtype=model.dtype)
        nn.init.constant_(module.weight, float("nan"))
        nn.init.constant_(module.bias, float("nan"))
        setattr(model.model, name, module)
    return model


def _load_into(
    model: nn.Module, weights: dict[str, torch.Tensor], source: Path, loaded: set[str], skip_unmatched: bool
) -> None:
    parameters = dict(model.named_parameters())
    unmatched = sorted(k for k in weights if k not in parameters)
    if unmatched and not skip_unmatched:
        raise ValueError(
            f"{source}: {len(unmatched)} key(s) name no parameter of the original model, e.g. {unmatched[:3]} "
            "(the release's loader silently drops them; pass --skip-unmatched-keys to do the same)"
        )
    for name, tensor in weights.items():
        if name not in parameters:
            continue
        if parameters[name].shape != tensor.shape:
            raise ValueError(
                f"{source}: {name} has shape {tuple(tensor.shape)}, the model expects {tuple(parameters[name].shape)}"
                + (
                    " (set --num-frames / --num-trajectory-points to the release's P and N)"
                    if "trajectory_projector" in name
                    else ""
                )
            )
        with torch.no_grad():
            parameters[name].copy_(tensor)
        loaded.add(name)


def _merge_lora(model: nn.Module, stage_dir: Path) -> nn.Module:
    """Apply the stage's LoRA adapter and merge it; every saved LoRA tensor must land on a module."""
    from peft import PeftConfig, PeftModel, load_peft_weights, set_peft_model_state_dict

    if not (stage_dir / ADAPTER_CONFIG_FILE).is_file() or not any(
        (stage_dir / f).is_file() for f in ADAPTER_WEIGHT_FILES
    ):
        raise MissingInputError(
            f"{stage_dir}: a LoRA stage needs {ADAPTER_CONFIG_FILE} and one of {ADAPTER_WEIGHT_FILES}", path=stage_dir
        )
    with reading(stage_dir / ADAPTER_CONFIG_FILE, "the LoRA adapter config"):
        config = PeftConfig.from_pretrained(os.fspath(stage_dir))
    if config.peft_type != "LORA":
        raise ValueError(f"{stage_dir / ADAPTER_CONFIG_FILE}: peft_type is {config.peft_type}, expected LORA")
    config.inference_mode = True
    peft_model = PeftModel(model, config)
    weights_file = next(stage_dir / name for name in ADAPTER_WEIGHT_FILES if (stage_dir / name).is_file())
    if weights_file.suffix == ".safetensors":
        check_safetensors_file(weights_file)
    with reading(weights_file, "the LoRA weights"):
        adapter_weights = load_peft_weights(os.fspath(stage_dir), device="cpu")
    result = set_peft_model_state_dict(peft_model, adapter_weights)
    missing = [k for k in result.missing_keys if "lora_" in k]
    if result.unexpected_keys or missing:
        raise ValueError(
            f"{stage_dir}: LoRA weights do not fit the model's modules: unexpected "
            f"{list(result.unexpected_keys)[:3]}, missing {missing[:3]}"
        )
    return peft_model.merge_and_unload()


def merge_original_stages(
    base_dir: Path,
    stage_dirs: Sequence[Path],
    feature_dim: int,
    trajectory_dim: int,
    dtype: torch.dtype,
    skip_unmatched: bool = False,
) -> LlamaForCausalLM:
    """Load the release exactly as its inference code does (see the module docstring); returns the merged model
    in the original layout (a LlamaForCausalLM with `model.vision_adapter`, `.localization_projector`,
    `.trajectory_projector`)."""
    model = original_layout_model(base_dir, dtype, feature_dim, trajectory_dim)
    loaded: set[str] = set()
    candidates = [stage / VISION_ADAPTER_FILE for stage in (stage_dirs[1], stage_dirs[0])]
    adapter_file = next((path for path in candidates if path.is_file()), None)
    if adapter_file is None:
        raise MissingInputError(
            f"no {VISION_ADAPTER_FILE} in stage 2 or stage 1: looked for {[str(p) for p in candidates]}",
            path=candidates[0],
        )
    adapter = vision_adapter_weights(adapter_file)
    _load_into(model, {f"model.vision_adapter.{k}": v for k, v in adapter.items()}, adapter_file, loaded, False)
    for stage_dir in stage_dirs:
        non_lora = stage_dir / NON_LORA_FILE
        if non_lora.is_file():  # the release tolerates a stage without one
            _load_into(model, normalise_non_lora_keys(load_weights_file(non_lora)), non_lora, loaded, skip_unmatched)
        model = _merge_lora(model, stage_dir)
    for original in ORIGINAL_TO_PITE_MODULES:
        for kind in ("weight", "bias"):
            name = f"model.{original}.{kind}"
            if name not in loaded:
                raise ValueError(
                    f"no stage provides {name} (looked in {VISION_ADAPTER_FILE} and every {NON_LORA_FILE})"
                )
            if not torch.isfinite(model.get_parameter(name)).all():
                raise ValueError(f"{name} holds non-finite values after loading and merging")
    return model


def split_original_modules(model: LlamaForCausalLM) -> dict[str, torch.Tensor]:
    """Detach the release's three extra modules from `model` (leaving a plain LlamaForCausalLM) and return their
    weights under PiTe's names."""
    weights = {}
    for original, ours in ORIGINAL_TO_PITE_MODULES.items():
        module = getattr(model.model, original)
        delattr(model.model, original)
        weights[f"{ours}.weight"] = module.weight.detach()
        weights[f"{ours}.bias"] = module.bias.detach()
    return weights


def convert_original(
    base_dir: str | os.PathLike,
    clip_dir: str | os.PathLike,
    stage_dirs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    num_frames: int = 100,
    num_trajectory_points: int = 3,
    dtype: torch.dtype = torch.float16,
    skip_unmatched_keys: bool = False,
    overwrite: bool = False,
) -> Path:
    """Convert the release to a PiTe checkpoint folder (model, tokenizer with `<video>`, processor).

    Args:
        base_dir: vicuna-7b-v1.5 (or 13b): Llama weights and tokenizer.
        clip_dir: clip-vit-large-patch14 (CLIPModel) with its preprocessor_config.json.
        stage_dirs: the three `pite-vicuna-*-stage{1,2,3}` folders, in order.
        num_frames, num_trajectory_points: N and P of the trajectory projector (the release: 100 and 3).
        dtype: dtype the LoRAs are merged and the result is stored in (the release runs in float16).
        skip_unmatched_keys: drop non-LoRA keys that name no parameter, as the release's loader does.
    """
    base = require_directory(base_dir, "--base")
    require_directory(clip_dir, "--clip")
    if len(stage_dirs) != 3:
        raise ValueError(f"expected 3 stage folders, got {len(stage_dirs)}")
    stages = [require_directory(stage, f"--stage{i + 1}") for i, stage in enumerate(stage_dirs)]
    check_output_folder(
        out_dir,
        overwrite,
        {"--base": base, "--clip": clip_dir, **{f"--stage{i + 1}": stage for i, stage in enumerate(stages)}},
    )
    tokenizer = load_tokenizer(base)
    image_processor = load_image_processor(clip_dir)
    vision_tower = load_vision_tower(clip_dir, dtype)
    trajectory_dim = num_trajectory_points * num_frames * 2
    merged = merge_original_stages(
        base, stages, vision_tower.config.projection_dim, trajectory_dim, dtype, skip_unmatched_keys
    )
    head_weights = split_original_modules(merged)
    return build_checkpoint(
        merged,
        vision_tower,
        tokenizer,
        image_processor,
        out_dir,
        new_weights=head_weights,
        num_frames=num_frames,
        num_trajectory_points=num_trajectory_points,
        dtype=dtype,
        overwrite=overwrite,
    )
