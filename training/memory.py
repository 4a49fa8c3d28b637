"""Memory each stage's model and optimizer states need, computed from the stage's real parameter counts.

`stage_parameter_counts` builds the stage's peft model on the meta device (no memory, no initialisation) with the
recipe's LoRA and counts frozen and trained parameters; `training_state_bytes` turns the counts into bytes:

    frozen parameter:  weight_bytes                      (2: bf16 weights)
    trained parameter: 4 + 4 + 4 + 4 = 16                (fp32 weight, fp32 gradient, AdamW's m and v in fp32)

Sharding (FSDP full_shard / ZeRO-3) divides both by the number of processes. Activations are not included: they
depend on batch size, sequence length and gradient checkpointing.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch

TRAINED_BYTES = 16  # fp32 weight + fp32 gradient + AdamW exp_avg + exp_avg_sq


@dataclass(frozen=True)
class StageParameters:
    stage: int
    frozen: int
    trained: int
    lora: int  # of `trained`: the LoRA matrices; the rest are the stage's fully trained modules


def stage_parameter_counts(
    model_config: Any,
    stage: int,
    lora_r: int = 64,
    lora_alpha: int = 128,
    lora_target_modules: list[str] | None = None,
) -> StageParameters:
    """Frozen, trained and LoRA parameter counts of `stage` for a model of `model_config` (a `PiTeConfig`)."""
    from trl import ModelConfig

    from pite.modeling_pite import PiTeForConditionalGeneration

    from .stages import prepare_model_for_stage

    lora = ModelConfig(
        use_peft=True, lora_r=lora_r, lora_alpha=lora_alpha, lora_dropout=0.0, lora_target_modules=lora_target_modules
    )
    recipe = SimpleNamespace(
        model_args=lora,
        localization_loss_weight=model_config.localization_loss_weight,
        label_smoothing=model_config.label_smoothing,
        absent_targets=model_config.absent_targets,
        seed=0,
        rehearsal_data_files=None,
    )
    with torch.device("meta"):
        model = prepare_model_for_stage(PiTeForConditionalGeneration(model_config), stage, recipe)
    trained = lora = frozen = 0
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            trained += parameter.numel()
            lora += parameter.numel() if ".lora_" in name else 0
        elif ".original_module." not in name:  # peft keeps the untrained original of each fully trained module
            frozen += parameter.numel()
    return StageParameters(stage=stage, frozen=frozen, trained=trained, lora=lora)


def training_state_bytes(
    counts: StageParameters, num_processes: int = 1, sharded: bool = False, weight_bytes: int = 2
) -> dict[str, float]:
    """Bytes per process: frozen weights, trained states (weights, gradients, AdamW) and their total.

    Args:
        num_processes: processes training together; divides everything when `sharded` (FSDP / ZeRO-3).
        weight_bytes: bytes per frozen weight (2 for bf16, 4 for fp32).
    """
    share = num_processes if sharded else 1
    frozen = counts.frozen * weight_bytes / share
    trained = counts.trained * TRAINED_BYTES / share
    return {"frozen_weights": frozen, "trained_states": trained, "total": frozen + trained}
