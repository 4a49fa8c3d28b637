"""Helpers of the multi-process tests: the launch environment, and finding a launched rank's process to kill it."""

from __future__ import annotations

import os


def launch_env(**extra: str) -> dict[str, str]:
    """The environment for a launched CPU run: one thread per process, offline, no tokenizer threads."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
            "TOKENIZERS_PARALLELISM": "false", **extra}


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[1])


def pids_of_rank(launcher_pid: int, rank: int) -> list[int]:
    """Processes descending from `launcher_pid` (torchrun) whose environment says RANK=`rank`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == launcher_pid:
            continue
        try:
            ancestor = int(name)
            while ancestor > 1 and ancestor != launcher_pid:
                ancestor = _parent(ancestor)
            if ancestor != launcher_pid:
                continue
            with open(f"/proc/{name}/environ", "rb") as handle:
                environ = handle.read().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue  # ended meanwhile, or not readable
        if f"RANK={rank}".encode() in environ:
            found.append(int(name))
    return found
