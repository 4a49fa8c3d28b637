"""`pite demo --ablation`: the paper's stage-2 ablation in miniature, over seeds.

Each seed runs the whole demo once per variant of `pipeline.ABLATION_VARIANTS` (the full recipe, stage 2's
trajectory loss off, stage 2 skipped) into `OUT/seed{S}/{variant}`, then the held-out scores are tabulated as the
mean and the sample standard deviation over seeds. Every variant of a seed shares the world, the pretrained stand-ins
and stage 1 (same seed, same bytes), so the differences are those of stages 2 and 3 alone: the first variant of a seed
makes them, the others use its folder's (`run_demo(shared_from=...)`) instead of making the same bytes again.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .pipeline import ABLATION_VARIANTS, DemoSettings, run_demo, settings_differences

# (key, label, better): the scores of one run that the table reports.
ABLATION_SCORES = (
    ("trajectory_L1", "trajectory L1 (teacher-forced)", "lower"),
    ("trajectory_L1_vs_centre", "trajectory L1 / constant centre", "lower"),
    ("grounding_mIoU", "grounding mIoU (%)", "higher"),
    ("grounding_mIoU_vs_random", "grounding mIoU / random interval", "higher"),
    ("grounding_mIoU_over_constant_span", "grounding mIoU - one span for every query (points)", "higher"),
    ("qa_accuracy", "QA accuracy (%)", "higher"),
    ("qa_over_majority", "QA accuracy - majority per kind (points)", "higher"),
)


def run_scores(metrics: dict[str, Any]) -> dict[str, float]:
    """The `ABLATION_SCORES` of one demo run's metrics."""
    evaluation = metrics["evaluation"]
    trajectory, grounding, qa = evaluation["trajectory"], evaluation["grounding"], evaluation["qa"]
    return {
        "trajectory_L1": trajectory["trained"]["L1"],
        "trajectory_L1_vs_centre": trajectory["trained"]["L1"] / trajectory["constant_centre"]["L1"],
        "grounding_mIoU": grounding["model"]["mIoU"],
        "grounding_mIoU_vs_random": grounding["model"]["mIoU"] / grounding["random_interval_mIoU"],
        "grounding_mIoU_over_constant_span": grounding["model"]["mIoU"] - grounding["constant_span"]["mIoU"],
        "qa_accuracy": qa["model_accuracy"],
        "qa_over_majority": qa["model_accuracy"] - qa["majority_accuracy"],
    }


def summarise(scores: dict[str, dict[int, dict[str, float]]]) -> dict[str, dict[str, dict[str, float]]]:
    """{variant: {seed: scores}} -> {variant: {score: {"mean", "std", "n"}}}; std is the sample deviation (0 for one
    seed)."""
    summary = {}
    for variant, by_seed in scores.items():
        summary[variant] = {}
        for key, _, _ in ABLATION_SCORES:
            values = np.array([seed_scores[key] for seed_scores in by_seed.values()], dtype=np.float64)
            std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            summary[variant][key] = {"mean": float(values.mean()), "std": std, "n": len(values)}
    return summary


def render_table(summary: dict[str, dict[str, dict[str, float]]], seeds: list[int]) -> str:
    variants = list(summary)
    lines = [
        "# PiTe demo ablation",
        "",
        f"Held-out scores, mean ± sample standard deviation over seeds {seeds}.",
        "",
        "| score | better | " + " | ".join(variants) + " |",
        "|---|---|" + "---|" * len(variants),
    ]
    for key, label, better in ABLATION_SCORES:
        cells = [f"{summary[v][key]['mean']:.3f} ± {summary[v][key]['std']:.3f}" for v in variants]
        lines.append(f"| {label} | {better} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def finished_run(run_dir: Path, settings: DemoSettings) -> dict[str, Any] | None:
    """The metrics of a run already finished in `run_dir` with exactly these settings, else None.

    Lets the seeds run in separate processes (`--seeds S` each, same OUT) and a last call tabulate them all; a run
    with other settings is not reused but run again.
    """
    path = run_dir / "metrics.json"
    if not path.is_file():
        return None
    metrics = json.loads(path.read_text())
    return None if settings_differences(metrics.get("settings"), settings) else metrics


def run_ablation(
    out_dir: str | os.PathLike,
    settings: DemoSettings | None = None,
    seeds: tuple[int, ...] = (0, 1, 2),
    variants: tuple[str, ...] = ABLATION_VARIANTS,
) -> dict[str, Any]:
    """Run every (seed, variant) into `out_dir` (reusing finished runs, `finished_run`), write `ablation.json` and
    `ablation.md`; return the summary."""
    from pite.core.file_writing import write_text

    unknown = [v for v in variants if v not in ABLATION_VARIANTS]
    if unknown:
        raise ValueError(f"unknown ablation variants {unknown}; known: {ABLATION_VARIANTS}")
    if not seeds:
        raise ValueError("the ablation needs at least one seed")
    settings = settings or DemoSettings()
    out = Path(out_dir)
    scores: dict[str, dict[int, dict[str, float]]] = {variant: {} for variant in variants}
    for seed in seeds:
        first_dir = out / f"seed{seed}" / variants[0]
        for variant in variants:
            run = dataclasses.replace(settings, seed=seed, variant=variant, compare_absent_targets=False)
            run_dir = out / f"seed{seed}" / variant
            metrics = finished_run(run_dir, run)
            if metrics is None:
                metrics = run_demo(run_dir, run, shared_from=None if run_dir == first_dir else first_dir)
            scores[variant][seed] = run_scores(metrics)
    summary = summarise(scores)
    result = {"seeds": list(seeds), "scores": scores, "summary": summary}
    write_text(out / "ablation.json", json.dumps(result, indent=2) + "\n")
    table = render_table(summary, list(seeds))
    write_text(out / "ablation.md", table)
    print(table)
    return result
