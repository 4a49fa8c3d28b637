"""Helpers of the multi-process tests: the launch environment, finding a launched rank's process, and killing one
process of a launch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

# torchrun with two processes on this machine; the script or `-m module` and its arguments follow.
TORCHRUN_TWO_PROCESSES = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def launch_env(**extra: str) -> dict[str, str]:
    """The environment for a launched CPU run: one thread per process, offline, no tokenizer threads."""
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "TOKENIZERS_PARALLELISM": "false",
        **extra,
    }


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


def launch_and_kill_one(
    command: list[str],
    env: dict[str, str],
    ready: Callable[[], bool],
    victim: Callable[[subprocess.Popen], int],
    timeout: float = 180,
) -> None:
    """Run `command` (a torchrun launch), wait until `ready()`, SIGKILL the process `victim(launcher)` names and
    check that the launch fails; whatever happens, no process of the launch outlives this call."""
    launcher = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert launcher.poll() is None, launcher.stdout.read()[-5000:]
            assert time.monotonic() < deadline, "the processes did not reach the point where one is killed in time"
            time.sleep(0.5)
        os.kill(victim(launcher), signal.SIGKILL)
        launcher.wait(timeout=120)
        assert launcher.returncode != 0
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
