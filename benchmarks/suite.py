"""PiTe benchmarks: print a table of ratios and write them as JSON.

On CPU every compared figure is a ratio measured in this one run, its sides alternating; absolute times are for
reference only. On a GPU (the `gpu` row) absolute numbers are meaningful. Set OMP_NUM_THREADS=1 on shared machines.

    pite bench [--rows overhead,generation,...] [--set NAME=VALUE ...] [--json results.json]
    python benchmarks/run.py  (same options)

Exit status: 0 when every row ran and met its target, 1 when a row failed or missed its target, 2 for bad options.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from pite.core.file_writing import write_json

from . import fast_paths, gpu, rows_core, video, video_input
from .measure import failed, format_table, meets_target
from .models import BenchSizes

Row = Callable[[BenchSizes], "dict[str, Any] | list[dict[str, Any]]"]

ROWS: dict[str, tuple[Row, str]] = {
    "overhead": (
        rows_core.row_overhead,
        "PiTe fwd+bwd with cached features / LlamaForCausalLM, same length (<= 1.10)",
    ),
    "generation": (
        rows_core.row_generation,
        "PiTe generate with trajectories / Llama generate, same tokens (<= 1.10)",
    ),
    "peer": (rows_core.row_peer, "Video-LLaVA at 8 and N frames / PiTe at N frames, one question end to end"),
    "video": (
        video.row_video,
        "default reader / fastest of torchcodec, decord, PyAV seek / one pass, sequential, "
        "full decode: GOP 30/60/250, 720p, 1080p (<= 1.10)",
    ),
    "video_memory": (video_input.row_video_memory, "4K, 100 frames read + preprocessed: MB above baseline (<= 400)"),
    "extraction": (video_input.row_extraction, "extract-features frames/s with DataLoader workers / without"),
    "features": (rows_core.row_features, "vision frames/s and the train step on pixels / on cached features"),
    "sdpa": (fast_paths.row_sdpa, "eager / SDPA attention (train step, generate)"),
    "static": (fast_paths.row_static, "dynamic / static KV cache (generate)"),
    "compile": (fast_paths.row_compile, "static eager / static + torch.compile of the decode step; slow on CPU"),
    "batch": (fast_paths.row_batch, "tokens/s at batch 4, 8 / batch 1 (left-padded generate)"),
    "checkpointing": (fast_paths.row_checkpointing, "checkpointed / plain train step; memory saved"),
    "bf16": (fast_paths.row_bf16, "fp32 / bf16 on CPU (train step, generate)"),
    "gpu": (gpu.row_gpu, "7B bf16: decode vs bandwidth bound, 100-frame prefill, stage-2 LoRA MFU (CUDA only)"),
}


def parse_rows(text: str) -> list[str]:
    """Row names from a comma-separated list (order kept, duplicates dropped); ValueError names unknown rows."""
    rows = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [row for row in rows if row not in ROWS]
    if unknown or not rows:
        raise ValueError(f"unknown rows {unknown} in --rows {text!r}; choose from {', '.join(ROWS)}")
    return rows


def parse_sizes(assignments: list[str]) -> BenchSizes:
    """`BenchSizes` with `NAME=VALUE` overrides; ValueError names the bad assignment."""
    overrides = {}
    for assignment in assignments:
        name, separator, value = assignment.partition("=")
        if not separator or not name.strip():
            raise ValueError(f"--set expects NAME=VALUE, got {assignment!r}")
        overrides[name.strip()] = value.strip()
    return BenchSizes().replace(overrides)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark options, shared by `pite bench` and `python benchmarks/run.py`."""
    parser.add_argument(
        "--rows",
        default=",".join(ROWS),
        help=f"comma-separated rows to run (default: all; --list says what each measures): {', '.join(ROWS)}",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a benchmark size (repeatable), e.g. --set num_layers=2 --set batch_sizes=1,4; "
        f"sizes: {', '.join(f.name for f in dataclasses.fields(BenchSizes))}",
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the environment and results here (atomically)"
    )
    parser.add_argument("--list", action="store_true", help="list the rows and exit")


def environment(sizes: BenchSizes) -> dict[str, Any]:
    """Where and with what the figures were measured."""
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), cpu)
    except OSError:
        pass
    return dict(
        date=time.strftime("%Y-%m-%d"),
        python=platform.python_version(),
        torch=torch.__version__,
        transformers=transformers.__version__,
        cpu=cpu,
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
        cuda=torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        sizes=dataclasses.asdict(sizes),
    )


def run(args: argparse.Namespace) -> int:
    """Run the chosen rows, print the table, write the JSON; the exit status of the module docstring."""
    if args.list:
        for name, (_, help_) in ROWS.items():
            print(f"{name:<14} {help_}")
        return 0
    try:
        rows, sizes = parse_rows(args.rows), parse_sizes(args.set)
    except ValueError as error:
        print(f"pite bench: {error}", file=sys.stderr)
        return 2
    if os.environ.get("OMP_NUM_THREADS") is None:
        print(
            "pite bench: OMP_NUM_THREADS is not set; on a shared CPU set it (e.g. to 1) for stable ratios",
            file=sys.stderr,
        )
    records: list[dict[str, Any]] = []
    for name in rows:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            produced = ROWS[name][0](sizes)
            records.extend(produced if isinstance(produced, list) else [produced])
        except Exception as error:  # a broken row is reported and fails the run, the others still run
            traceback.print_exc(file=sys.stderr)
            records.append(failed(name, error))
    env = environment(sizes)
    print(f"environment: {env}")
    print(format_table(records))
    if args.json:
        write_json(args.json, dict(environment=env, results=records))
    bad = [r["row"] for r in records if "error" in r or meets_target(r) is False]
    if bad:
        print(f"pite bench: failed or missed target: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0
