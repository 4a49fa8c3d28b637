"""Timing, memory, result records and their output (table and JSON).

On a shared CPU absolute times drift by 2x within minutes, so every compared figure is a ratio of medians whose
sides were measured alternately (`timed_alternating`): load that hits one side hits the other alike.
"""

from __future__ import annotations

import math
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch


def timed(function: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of `function` in seconds, after `warmup` unmeasured calls."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timed_alternating(
    functions: Mapping[str, Callable[[], object]],
    repeats: int = 7,
    warmup: int = 1,
    reduce: Callable[[list[float]], float] = statistics.median,
) -> dict[str, float]:
    """Median (or `reduce`, e.g. `min`) wall time (s) of each named function, measured round-robin so machine load
    hits all of them alike."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if not functions:
        raise ValueError("timed_alternating needs at least one function")
    for _ in range(warmup):
        for function in functions.values():
            function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: reduce(values) for name, values in times.items()}


def result(
    row: str,
    ratio: float | None,
    ratio_is: str,
    figures: Mapping[str, Any],
    detail: str,
    target: float | None = None,
) -> dict[str, Any]:
    """One line of the table.

    Args:
        row: the row's name (a `--rows` choice, with a qualifier where a row prints several lines).
        ratio: the compared figure (None for a row of absolute figures); `target`, when given, is met when
            `ratio <= target`.
        ratio_is: what the ratio divides, e.g. "PiTe time / Llama time".
        figures: the measured values behind the ratio (seconds, counts, bytes, ...).
        detail: the setting, in words.
    """
    if ratio is not None and (not isinstance(ratio, (int, float)) or not math.isfinite(ratio)):
        raise ValueError(f"row {row!r}: ratio must be a finite number or None, got {ratio!r}")
    if target is not None and ratio is None:
        raise ValueError(f"row {row!r}: a target needs a ratio")
    return dict(
        row=row,
        ratio=None if ratio is None else float(ratio),
        ratio_is=ratio_is,
        target=target,
        figures=dict(figures),
        detail=detail,
    )


def seconds_ratio(
    row: str,
    seconds: Mapping[str, float],
    slower: str,
    faster: str,
    ratio_is: str,
    detail: str,
    target: float | None = None,
    **more_figures: Any,
) -> dict[str, Any]:
    """`result` for a row that compares two timed variants: ratio `seconds[slower] / seconds[faster]`, figures
    `{slower}_s` and `{faster}_s` (then `more_figures`)."""
    figures = {f"{slower}_s": seconds[slower], f"{faster}_s": seconds[faster], **more_figures}
    return result(row, seconds[slower] / seconds[faster], ratio_is, figures, detail, target=target)


def skipped(row: str, reason: str) -> dict[str, Any]:
    """A row that cannot run on this machine (no GPU, a missing package, an unsupported backend): not a failure."""
    return dict(row=row, skipped=reason)


def failed(row: str, error: BaseException) -> dict[str, Any]:
    """A row that raised: a failure of the run, reported with the error."""
    return dict(row=row, error=f"{type(error).__name__}: {error}")


def meets_target(record: Mapping[str, Any]) -> bool | None:
    """True/False when the record has a target, None when it has none (or did not run)."""
    if record.get("target") is None or record.get("ratio") is None:
        return None
    return record["ratio"] <= record["target"]


def format_value(value: Any) -> str:
    """Figures for the table: 4 significant digits for floats, as-is otherwise."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def format_table(records: Iterable[Mapping[str, Any]]) -> str:
    """A Markdown table of result records (see `result`, `skipped`, `failed`)."""
    lines = ["| row | ratio | ratio is | target | figures | setting |", "|---|---|---|---|---|---|"]
    for record in records:
        if "skipped" in record:
            lines.append(f"| {record['row']} | - | skipped | - | {record['skipped']} | |")
            continue
        if "error" in record:
            lines.append(f"| {record['row']} | - | FAILED | - | {record['error']} | |")
            continue
        verdict = {None: "", True: " (meets)", False: " (MISSES)"}[meets_target(record)]
        target = "-" if record.get("target") is None else f"<= {record['target']}"
        figures = ", ".join(f"{name}={format_value(value)}" for name, value in record["figures"].items())
        ratio = "-" if record["ratio"] is None else f"{record['ratio']:.3f}"
        lines.append(
            f"| {record['row']} | {ratio}{verdict} | {record['ratio_is']} | {target} | {figures} "
            f"| {record['detail']} |"
        )
    return "\n".join(lines)


def clear_dynamo_counts() -> None:
    """Clear torch._dynamo's counters, so that `dynamo_counts` covers only what runs after."""
    from torch._dynamo.utils import counters

    counters.clear()


def dynamo_counts() -> dict[str, int]:
    """Graphs dynamo compiled and graph breaks it took since `clear_dynamo_counts` (0 and 0 when nothing compiled):
    whether generate() compiled its decode step, and whole."""
    from torch._dynamo.utils import counters

    return dict(
        graphs=int(counters["stats"].get("unique_graphs", 0)), graph_breaks=int(sum(counters["graph_break"].values()))
    )


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def current_rss_bytes() -> int:
    """This process's resident set size now (Linux /proc; falls back to the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return peak_rss_bytes()


def saved_activation_bytes(
    forward: Callable[[], torch.Tensor], exclude: Iterable[torch.Tensor] = ()
) -> tuple[int, torch.Tensor]:
    """Bytes autograd keeps for the backward pass while `forward` runs, and `forward`'s output.

    Counts each storage once; storages of `exclude` (the parameters, which exist anyway) are not counted. Tensors
    that gradient checkpointing drops are not saved, so the count shows what checkpointing frees.
    """
    excluded = {tensor.untyped_storage().data_ptr() for tensor in exclude}
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in excluded:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        output = forward()
    return sum(storages.values()), output
