"""Create the side virtual environment the torchvision tests run their child interpreter in.

    .venv/bin/python tests/torchvision_venv.py .venv-torchvision

transformers gates `AutoVideoProcessor` (and every `BaseVideoProcessor`) on torchvision, and torchvision has no build
that matches the CPU torch the project pins (`constraints-cpu.txt`). The side environment holds a torch/torchvision
pair that installs together, the exact versions of transformers, tokenizers, huggingface_hub, safetensors, numpy,
Pillow and PyAV that the running interpreter has, and NOT `pite`: a test there loads a saved checkpoint the way a
user with only transformers does (`tests/processing/test_auto_classes_with_torchvision.py`).

The pair is chosen by machine: on x86_64 the CUDA build torch 2.14.1 + torchvision 0.29.1 (runs on the CPU; about
5.6 GB), on aarch64 the CPU build torch 2.9.1 + torchvision 0.24.1. An existing environment is reused (pip then
installs nothing). Prints the seconds the install took.
"""

from __future__ import annotations

import platform
import subprocess
import sys
import time
import venv
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

TORCH_PAIRS = {"x86_64": ("torch==2.14.1", "torchvision==0.29.1"), "aarch64": ("torch==2.9.1", "torchvision==0.24.1")}
# Same versions as the main environment, so that only torch/torchvision and the absence of pite differ.
SAME_AS_HERE = ("transformers", "tokenizers", "huggingface_hub", "safetensors", "numpy", "pillow", "av")


def requirements(machine: str) -> list[str]:
    """pip requirement strings for the side environment on `machine` (`platform.machine()`)."""
    if machine not in TORCH_PAIRS:
        raise SystemExit(f"no torch/torchvision pair known for machine {machine!r} (known: {sorted(TORCH_PAIRS)})")
    pinned = []
    for name in SAME_AS_HERE:
        try:
            pinned.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            raise SystemExit(f"{name} is not installed in {sys.executable}: run this with the project venv") from None
    return [*TORCH_PAIRS[machine], *pinned]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tests/torchvision_venv.py DIR", file=sys.stderr)
        return 2
    target = Path(argv[0])
    python = target / "bin" / "python"
    start = time.perf_counter()
    if not python.exists():
        venv.create(target, with_pip=True)
    command = [str(python), "-m", "pip", "install", "--quiet", *requirements(platform.machine())]
    if subprocess.run(command).returncode != 0:
        print(
            f"installing the torchvision environment into {target} failed (command: {' '.join(command)})",
            file=sys.stderr,
        )
        return 1
    print(f"torchvision environment ready in {target} ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
