"""Which process of a launch (`torchrun`, `accelerate launch`) this is, for commands that split their files.

`pite extract-features` and `pite annotate` give each process a disjoint shard of their files; the launcher's
environment (WORLD_SIZE, RANK, ...) says how many processes there are. accelerate's `PartialState` reads it,
joins the process group (gloo on CPU, NCCL on GPUs) and provides the barrier and this process's device.
"""

from __future__ import annotations

import os
from typing import Any


def launched_world_size() -> int:
    """Number of processes the launcher started (1 when run directly)."""
    value = os.environ.get("WORLD_SIZE", "1")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"the environment variable WORLD_SIZE must be an integer, got {value!r}") from None


def launched_state() -> Any | None:
    """accelerate's `PartialState` when a launcher started several processes, else None (no process group).

    A single process does not create the state: it would pin accelerate's singleton before a later `Trainer`
    in the same Python process chooses its own settings. Without an accelerator the state is created with
    `cpu=True`: otherwise accelerate ignores the launch on CPU and every process believes it is alone.
    """
    if launched_world_size() <= 1:
        return None
    import torch
    from accelerate import PartialState

    accelerator = getattr(torch, "accelerator", None)
    has_accelerator = accelerator.is_available() if accelerator is not None else torch.cuda.is_available()
    return PartialState(cpu=not has_accelerator)
