"""`pite demo --ablation`: the variants train what they say, and the table is the mean and spread over seeds."""

import json
import subprocess
import sys

import numpy as np
import pytest

from pite.demo.ablation import ABLATION_SCORES, render_table, run_scores, summarise


def _metrics(l1, centre, miou, random_miou, qa, majority):
    return {
        "evaluation": {
            "trajectory": {"trained": {"L1": l1}, "constant_centre": {"L1": centre}},
            "grounding": {"model": {"mIoU": miou}, "random_interval_mIoU": random_miou},
            "qa": {"model_accuracy": qa, "majority_accuracy": majority},
        }
    }


def test_scores_and_summary_are_the_mean_and_sample_spread_over_seeds():
    first, second = (
        run_scores(_metrics(0.2, 0.4, 30.0, 20.0, 50.0, 40.0)),
        run_scores(_metrics(0.3, 0.4, 36, 20, 44, 40)),
    )
    assert first["trajectory_L1_vs_centre"] == pytest.approx(0.5) and first["grounding_mIoU_vs_random"] == 1.5
    assert first["qa_over_majority"] == 10.0 and set(first) == {key for key, _, _ in ABLATION_SCORES}
    summary = summarise({"full": {0: first, 1: second}, "no_stage2": {0: second}})
    assert summary["full"]["trajectory_L1"]["mean"] == pytest.approx(0.25)
    assert summary["full"]["grounding_mIoU"]["std"] == pytest.approx(np.std([30, 36], ddof=1))
    assert summary["no_stage2"]["qa_accuracy"] == {"mean": 44.0, "std": 0.0, "n": 1}
    table = render_table(summary, [0, 1])
    assert "| grounding mIoU (%) | higher | 33.000 ± 4.243 | 36.000 ± 0.000 |" in table


def test_quick_ablation_runs_each_variant_with_what_it_names(tmp_path):
    out = tmp_path / "ablation"
    result = subprocess.run(
        [sys.executable, "-m", "pite.cli.main", "demo", "--quick", "--ablation", "--seeds", "0", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = (out / "ablation.md").read_text()
    assert "| trajectory L1 / constant centre | lower |" in table and "full | no_trajectory_loss | no_stage2" in table
    saved = json.loads((out / "ablation.json").read_text())
    assert saved["seeds"] == [0] and set(saved["summary"]) == {"full", "no_trajectory_loss", "no_stage2"}
    runs = {v: json.loads((out / "seed0" / v / "metrics.json").read_text()) for v in saved["summary"]}
    assert set(runs["no_stage2"]["training"]) == {"stage1", "stage3"}  # stage 2 skipped
    assert not (out / "seed0" / "no_stage2" / "checkpoints" / "stage2").exists()
    assert set(runs["full"]["training"]) == {"stage1", "stage2", "stage3"}
    # lambda = 0: stage 2 still trains its text, and its trajectory term does not reach the loss
    stage2 = runs["no_trajectory_loss"]["training"]["stage2"]["last"]
    assert stage2["loss"] == pytest.approx(stage2["lm_loss"], abs=1e-3)
    full2 = runs["full"]["training"]["stage2"]["last"]
    assert full2["loss"] > full2["lm_loss"] + 1e-3
    # the three variants share stage 1 (same seed, same world, stage 1's point loss in all): the same stage-1 losses
    assert runs["no_stage2"]["training"]["stage1"] == runs["full"]["training"]["stage1"]
    assert runs["no_trajectory_loss"]["training"]["stage1"] == runs["full"]["training"]["stage1"]


def test_a_finished_run_is_reused_only_with_the_same_settings(tmp_path):
    import dataclasses

    from pite.demo.ablation import finished_run
    from pite.demo.pipeline import DemoSettings

    settings = dataclasses.replace(DemoSettings.quick(), variant="no_stage2", compare_absent_targets=False)
    assert finished_run(tmp_path, settings) is None
    metrics = {"settings": dataclasses.asdict(settings), **_metrics(0.2, 0.4, 30, 20, 50, 40)}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert finished_run(tmp_path, settings)["evaluation"] == metrics["evaluation"]
    assert finished_run(tmp_path, dataclasses.replace(settings, seed=1)) is None
    assert finished_run(tmp_path, dataclasses.replace(settings, stage_epochs=(1, 2, 1))) is None
