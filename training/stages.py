"""What each stage trains, with peft: a new LoRA on the language model plus the stage's full-trained modules.

| stage | LoRA | also trained (peft `modules_to_save`) | before training |
|---|---|---|---|
| 1 | new | video adapter, localization head | - |
| 2 | new (stage-1 LoRA merged into the input) | trajectory head | trajectory head <- tiled localization head (eq. 9) |
| 3 | new (stage-2 LoRA already merged) | - (trajectory head with `rehearsal_data_files`) | - |

Everything else (vision tower, the language model's base weights, embeddings, vocabulary head, other heads) is
frozen. A stage ends with `save_stage_output`: its LoRA adapter (with the trained modules) is kept in `lora/`, then
merged, and the merged model is saved as a standalone checkpoint that the next stage and `from_pretrained` load.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
from typing import Any

from peft import PeftModel, get_peft_model
from torch import nn
from transformers import set_seed
from trl import get_peft_config

from .sharded_saving import gathered_for_modification

STAGE_TRAINED_MODULES: dict[int, tuple[str, ...]] = {
    1: ("video_adapter", "localization_head"),
    2: ("trajectory_head",),
    3: (),
}
ADAPTER_SUBFOLDER = "lora"
LANGUAGE_MODEL_PREFIX = "model.language_model."


def trained_modules(stage: int, config: Any) -> tuple[str, ...]:
    """Modules fully trained in `stage`: the table above; stage 3 replaying stage-2 data also trains the trajectory
    head, whose loss it then has."""
    if stage == 3 and getattr(config, "rehearsal_data_files", None):
        return ("trajectory_head",)
    return STAGE_TRAINED_MODULES[stage]


def lora_target_pattern(model: nn.Module, names: list[str] | None = None) -> str:
    """A regex (peft full-matches it against module paths) for the language model's linear layers.

    Args:
        names: last path components to adapt (e.g. ["q_proj", "v_proj"]); None = every `nn.Linear` of the LLM.
    """
    found = sorted(
        {
            path.rsplit(".", 1)[-1]
            for path, module in model.named_modules()
            if path.startswith(LANGUAGE_MODEL_PREFIX) and isinstance(module, nn.Linear)
        }
    )
    chosen = found if names is None else list(names)
    unknown = sorted(set(chosen) - set(found))
    if unknown or not chosen:
        raise ValueError(
            f"lora_target_modules {unknown or chosen} are not linear layers of the language model; choose from {found}"
        )
    return re.escape(LANGUAGE_MODEL_PREFIX) + r".*\.(" + "|".join(re.escape(name) for name in chosen) + r")"


def prepare_model_for_stage(model: nn.Module, stage: int, config: Any) -> PeftModel:
    """Configure the loss of `stage` on `model` and wrap it with the stage's new LoRA; returns the peft model.

    Args:
        model: a `PiTeForConditionalGeneration` without adapters (stage 2/3: the previous stage's merged output).
        config: a `StageConfig` (its `model_args` give the LoRA through `trl.get_peft_config`; also read:
            localization_loss_weight, label_smoothing, absent_targets, rehearsal_data_files, seed).

    Seeds the global RNG with `config.seed` right before creating the LoRA, so its initialisation is reproducible.
    """
    if stage not in STAGE_TRAINED_MODULES:
        raise ValueError(f"stage must be 1, 2 or 3, got {stage!r}")
    if isinstance(model, PeftModel):
        raise ValueError("the model already carries a peft adapter: merge it (merge_and_unload) before the next stage")
    model.config.localization_loss_weight = config.localization_loss_weight
    model.config.label_smoothing = config.label_smoothing
    model.config.absent_targets = config.absent_targets
    if stage == 2:
        heads = [*model.trajectory_head.parameters(), *model.localization_head.parameters()]
        with gathered_for_modification(heads):
            model.initialize_trajectory_head_from_localization_head()
    # TRL builds the LoRA from the ModelConfig fields; PiTe restricts it to the language model's linear layers, adds
    # the stage's fully trained modules, and uses the generic PeftModel (its forward takes visual inputs and targets).
    lora_config = dataclasses.replace(
        get_peft_config(config.model_args),
        task_type=None,
        target_modules=lora_target_pattern(model, config.model_args.lora_target_modules),
        modules_to_save=list(trained_modules(stage, config)) or None,
    )
    set_seed(
        config.seed
    )  # the new LoRA's random initialisation must not depend on what ran before (data loading, ...)
    peft_model = get_peft_model(model, lora_config)
    # peft freezes the base model; the vision tower stays frozen whatever the config says (the paper's setting).
    peft_model.get_base_model().model.vision_tower.requires_grad_(False)
    return peft_model


def trainable_parameter_names(model: nn.Module) -> list[str]:
    return [name for name, parameter in model.named_parameters() if parameter.requires_grad]


def remove_training_patches(model: nn.Module) -> None:
    """Undo TRL's per-instance forward patch (its fused LM head), so the saved/returned model is the plain class."""
    if "forward" in vars(model):
        del model.forward


def merge_stage(peft_model: PeftModel) -> nn.Module:
    """Merge the stage's LoRA (and trained modules) into the base model; returns the plain model."""
    merged = peft_model.merge_and_unload()
    remove_training_patches(merged)
    return merged


def save_stage_output(peft_model: PeftModel, output_dir: str, processor: Any = None) -> nn.Module:
    """Write the stage's output folder and return the merged model.

    `output_dir/lora/` gets the unmerged adapter (LoRA + trained modules, peft format); `output_dir/` gets the merged,
    standalone checkpoint (config, weights, remote code, processor). Each file is written into a temporary folder
    first and moved into place with `os.replace`.
    """
    os.makedirs(output_dir, exist_ok=True)
    staging = tempfile.mkdtemp(dir=output_dir, prefix=".tmp-stage-output-")
    try:
        peft_model.save_pretrained(os.path.join(staging, ADAPTER_SUBFOLDER))
        merged = merge_stage(peft_model)
        merged.save_pretrained(staging)
        if processor is not None:
            processor.save_pretrained(staging)
        for root, _, files in os.walk(staging):
            target_root = os.path.join(output_dir, os.path.relpath(root, staging))
            os.makedirs(target_root, exist_ok=True)
            for name in files:
                os.replace(os.path.join(root, name), os.path.join(target_root, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return merged
