"""`pite demo --quick` runs end to end through the real command and writes its artefacts."""

import json
import subprocess
import sys

from PIL import Image


def test_pite_demo_quick_writes_report_metrics_pictures_and_model(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "pite.cli.main", "demo", "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_counts"]["train_videos"] == 8
    assert metrics["frame_encoder"]["final_loss"] < metrics["frame_encoder"]["initial_loss"]
    assert metrics["language_model"]["final_loss"] < metrics["language_model"]["initial_loss"]
    for stage in ("stage1", "stage2", "stage3"):
        assert metrics["training"][stage]["steps"] >= 1, stage
    evaluation = metrics["evaluation"]
    for name in ("trained", "untrained", "constant_centre"):
        assert evaluation["trajectory"][name]["num_points"] > 0
    assert evaluation["grounding"]["model"]["num_queries"] == metrics["world_counts"]["eval_events"]
    assert evaluation["qa"]["num_questions"] == metrics["world_counts"]["eval_questions"]
    assert set(metrics["beats_baselines"]) == {
        "trajectory_vs_constant_centre", "trajectory_vs_untrained", "grounding_vs_random_interval", "qa_vs_majority"}
    report = (out / "report.md").read_text()
    assert "| temporal grounding | mIoU (%)" in report and "Held-out example" in report
    with Image.open(out / "trajectories.png") as sheet:
        assert sheet.size[0] > 0
    with Image.open(out / "trajectories.gif") as gif:
        assert gif.n_frames > 10  # PIL merges identical consecutive frames
    for name in ("config.json", "model.safetensors", "modeling_pite.py", "processing_pite.py", "processor_config.json"):
        assert (out / "model" / name).exists(), name
