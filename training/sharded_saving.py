"""Writing a stage's output when FSDP shards the parameters across processes.

Under FSDP each process holds a slice of every parameter (FSDP2: `DTensor`s), so peft's `save_pretrained` and
`merge_and_unload` on the trained model would read one slice, or fail. `unsharded_peft_model` gathers the full state
dict (accelerate's `get_state_dict`: a collective, every process calls it; the main process receives it on CPU) and
loads it into a fresh, unsharded copy of the peft model, which `save_stage_output` then writes as usual: `lora/`
from the full LoRA and trained modules, the standalone checkpoint from their merge.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import torch
from peft import PeftModel, get_peft_model


def gathered_for_modification(parameters: Iterable[torch.nn.Parameter]) -> contextlib.AbstractContextManager:
    """Context in which `parameters` are whole and writable: DeepSpeed ZeRO-3 partitions them as the model loads
    (`zero3_init_flag`), so an in-place initialisation must gather them first and re-partition after."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    if not is_deepspeed_zero3_enabled():
        return contextlib.nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters(list(parameters), modifier_rank=0)


def parameters_are_sharded(trainer: Any) -> bool:
    """Whether the trainer's accelerator shards parameters (FSDP, either version)."""
    from accelerate.utils import DistributedType

    return trainer.accelerator.distributed_type == DistributedType.FSDP


def unsharded_peft_model(trainer: Any, peft_model: PeftModel) -> PeftModel | None:
    """`peft_model` itself when parameters are not sharded; under FSDP (every process must call this) an unsharded
    CPU copy holding the gathered full state dict on the main process, and None on the others.

    The copy is built on the meta device (no second initialisation of a 7B model), takes the gathered tensors as its
    parameters, and the buffers (rotary tables and the like, which FSDP does not shard) from the trained model.
    """
    if not parameters_are_sharded(trainer):
        return peft_model
    full_state = trainer.accelerator.get_state_dict(trainer.model)
    if not trainer.accelerator.is_main_process:
        return None
    base = peft_model.get_base_model()
    with torch.device("meta"):
        fresh = type(base)(base.config)
    adapter_name = peft_model.active_adapter
    copy = get_peft_model(fresh, peft_model.peft_config[adapter_name], adapter_name=adapter_name)
    missing, unexpected = copy.load_state_dict(full_state, strict=False, assign=True)
    if missing or unexpected:
        raise RuntimeError(
            f"the gathered FSDP state dict does not fit the model: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )
    modules = dict(copy.named_modules())
    for name, buffer in peft_model.named_buffers():
        owner, _, attribute = name.rpartition(".")
        local = buffer.full_tensor() if hasattr(buffer, "full_tensor") else buffer
        modules[owner].register_buffer(
            attribute,
            local.detach().to("cpu").clone(),
            persistent=attribute not in modules[owner]._non_persistent_buffers_set,
        )
    copy.get_base_model().tie_weights()
    copy.train(peft_model.training)
    return copy
