"""`pite demo --ablation`: the variants train what they say, and the table is the mean and spread over seeds."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from pite.demo.ablation import ABLATION_SCORES, render_table, run_scores, summarise
from pite.demo.pipeline import DemoSettings, run_demo


def _metrics(l1, centre, miou, random_miou, qa, majority, constant_miou=25.0):
    return {
        "evaluation": {
            "trajectory": {"trained": {"L1": l1}, "constant_centre": {"L1": centre}},
            "grounding": {
                "model": {"mIoU": miou},
                "random_interval_mIoU": random_miou,
                "constant_span": {"answer": "From 10 to 90.", "mIoU": constant_miou},
            },
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
    assert first["grounding_mIoU_over_constant_span"] == 5.0
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
    # the three variants share stage 1 (same seed, same world, stage 1's point loss in all): the later ones use the
    # first one's instead of training the same bytes again
    full_dir = out / "seed0" / "full"
    for variant in ("no_stage2", "no_trajectory_loss"):
        assert (
            runs[variant]["stage1_from"] == str(full_dir)
            and runs[variant]["training"]["stage1"] == (runs["full"]["training"]["stage1"])
        )
        assert not (out / "seed0" / variant / "checkpoints" / "stage1").exists()
        assert not (out / "seed0" / variant / "data").exists()
    assert runs["full"]["stage1_from"] is None

    # and what follows stage 1 is what a run making its own stage 1 gets: no_stage2 from scratch, same numbers
    alone = run_demo(
        tmp_path / "alone",
        dataclasses.replace(DemoSettings.quick(), variant="no_stage2", compare_absent_targets=False),
    )
    assert alone["training"] == runs["no_stage2"]["training"]
    assert alone["evaluation"]["qa"] == runs["no_stage2"]["evaluation"]["qa"]
    assert alone["evaluation"]["trajectory"]["trained"] == runs["no_stage2"]["evaluation"]["trajectory"]["trained"]


def test_a_shared_run_with_other_settings_is_refused(tmp_path):
    from pite.demo.pipeline import _shared_run

    settings = DemoSettings.quick()
    (tmp_path / "checkpoints" / "stage1").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="not a finished demo run"):
        _shared_run(tmp_path / "checkpoints", settings)
    saved = dataclasses.asdict(dataclasses.replace(settings, variant="no_stage2", compare_absent_targets=False))
    (tmp_path / "metrics.json").write_text(json.dumps({"settings": saved}))
    assert _shared_run(tmp_path, settings)["run_dir"] == tmp_path  # variant and the comparison act after stage 1
    with pytest.raises(ValueError, match=r"other settings \(seed, stage_epochs\): its stage 1 is not this one's"):
        _shared_run(tmp_path, dataclasses.replace(settings, seed=3, stage_epochs=(2, 1, 1)))


def test_a_finished_run_is_reused_only_with_the_same_settings(tmp_path):
    from pite.demo.ablation import finished_run

    settings = dataclasses.replace(DemoSettings.quick(), variant="no_stage2", compare_absent_targets=False)
    assert finished_run(tmp_path, settings) is None
    metrics = {"settings": dataclasses.asdict(settings), **_metrics(0.2, 0.4, 30, 20, 50, 40)}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert finished_run(tmp_path, settings)["evaluation"] == metrics["evaluation"]
    assert finished_run(tmp_path, dataclasses.replace(settings, seed=1)) is None
    assert finished_run(tmp_path, dataclasses.replace(settings, stage_epochs=(1, 2, 1))) is None
