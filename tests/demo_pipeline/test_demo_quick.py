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
    assert "Held-out example" in (out / "report.md").read_text()
    with Image.open(out / "trajectories.png") as sheet:
        assert sheet.size[0] > 0
    with Image.open(out / "trajectories.gif") as gif:
        assert gif.n_frames > 10  # PIL merges identical consecutive frames
    for name in ("config.json", "model.safetensors", "modeling_pite.py", "processing_pite.py", "processor_config.json"):
        assert (out / "model" / name).exists(), name
