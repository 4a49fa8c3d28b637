"""Plumbing: `pite annotate` end to end on CPU with tiny random OWLv2 / SAM / SAM2-video checkpoints loaded by path.

Random weights detect garbage, so these tests assert what must hold whatever the weights: the output is valid
stage-2 data of the right shapes, the counts add up, every step ran (grounding, segmentation, propagation over the
tracking frames), resuming skips finished videos, and a bad video is recorded without stopping the run.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from pite.annotation.stage2_format import check_stage2_record, read_stage2_jsonl
from pite.cli.main import main

NUM_FRAMES = 12


@pytest.fixture(scope="module")
def one_video_captions(synthetic_world, tmp_path_factory):
    """A JSONL captions file with one held-out video (its first two events) and one video that does not exist."""
    manifest, videos = synthetic_world
    scene = videos[0].scene
    events = [{"caption": e.caption, "start": e.start, "end": e.end} for e in scene.events[:2]]
    path = tmp_path_factory.mktemp("captions") / "captions.jsonl"
    lines = [
        {"video_id": scene.video_id, "video": f"{scene.video_id}.mp4", "events": events},
        {"video_id": "missing_clip", "events": [{"caption": "a red circle", "start": 0.0, "end": 1.0}]},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return manifest, scene, str(path)


def _annotate(checkpoints, videos_dir, captions, out, *extra):
    return main(
        [
            "annotate",
            "--videos",
            videos_dir,
            "--captions",
            captions,
            "--out",
            out,
            "--detector",
            checkpoints["owlv2"],
            "--segmenter",
            checkpoints["sam"],
            "--propagator",
            checkpoints["sam2_video"],
            "--device",
            "cpu",
            "--detector-threshold",
            "0",
            "--num-frames",
            str(NUM_FRAMES),
            "--no-progress",
            *extra,
        ]
    )


def test_tiny_models_run_end_to_end_and_write_valid_stage2(tiny_checkpoints, one_video_captions, tmp_path, capsys):
    manifest, scene, captions = one_video_captions
    out = str(tmp_path / "pite.jsonl")
    status = _annotate(tiny_checkpoints, manifest.eval_videos_dir, captions, out)
    assert status == 1  # finished, but the missing video failed

    records = list(read_stage2_jsonl(out))
    assert [r["video_id"] for r in records] == [scene.video_id]
    record = records[0]
    check_stage2_record(record, num_key_points=3, num_frames=NUM_FRAMES)
    assert record["duration"] == pytest.approx(scene.duration)
    assert [e["caption"] for e in record["events"]] == [e.caption for e in scene.events[:2]]
    objects = [obj for event in record["events"] for obj in event["objects"]]
    assert objects, "with threshold 0 every phrase grounds, and the tiny SAM's masks are not empty"
    for event in record["events"]:
        for obj in event["objects"]:
            trajectory = np.asarray(obj["trajectory"])
            assert trajectory.shape == (3, NUM_FRAMES, 2)
            assert (trajectory >= 0).any(), "a kept object is visible on at least one sampled frame"

    summary = json.loads(open(out + ".summary.json", encoding="utf-8").read())
    counts = summary["counts"]
    assert summary["videos_annotated"] == 1 and summary["videos_failed"] == 1
    assert counts["objects"] == len(objects)
    assert counts["events"] == 2
    assert counts["phrases"] == counts["objects"] + sum(v for k, v in counts.items() if k.startswith("dropped_"))
    assert counts["tracked_frames"] > 0, "propagation ran"
    failures = [json.loads(line) for line in open(out + ".failures.jsonl", encoding="utf-8")]
    assert [f["video_id"] for f in failures] == ["missing_clip"]
    assert "FileNotFoundError" in failures[0]["error"] and "missing_clip" in failures[0]["error"]
    assert not os.path.exists(out + ".partial"), "the working file is merged into OUT and removed"
    assert "1 videos failed" in capsys.readouterr().err

    # Resume: the finished video is skipped, the failed one retried (and failing again); OUT is unchanged.
    before = open(out, encoding="utf-8").read()
    assert _annotate(tiny_checkpoints, manifest.eval_videos_dir, captions, out) == 1
    summary = json.loads(open(out + ".summary.json", encoding="utf-8").read())
    assert summary["videos_already_done"] == 1 and summary["videos_annotated"] == 0 and summary["videos_failed"] == 1
    assert open(out, encoding="utf-8").read() == before


def test_unloadable_checkpoint_is_a_clear_error(tiny_checkpoints, one_video_captions, tmp_path, capsys):
    manifest, _, captions = one_video_captions
    checkpoints = dict(tiny_checkpoints, sam2_video=str(tmp_path / "no_such_model"))
    assert _annotate(checkpoints, manifest.eval_videos_dir, captions, str(tmp_path / "out.jsonl")) == 2
    error = capsys.readouterr().err
    assert "SAM2 video propagator" in error and "no_such_model" in error
    assert not os.path.exists(tmp_path / "out.jsonl")


def test_owlv2_grounder_returns_boxes_inside_the_image(tiny_checkpoints):
    from pite.annotation.grounding import Owlv2Grounder

    grounder = Owlv2Grounder(tiny_checkpoints["owlv2"], threshold=0.0, device="cpu")
    image = np.random.default_rng(0).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    detections = grounder.ground(image, ["the red circle", "a dog", "the blue square"])
    assert len(detections) == 3
    for detection in detections:
        x0, y0, x1, y1 = detection.box
        assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64 and 0 <= detection.score <= 1
    grounder.threshold = detections[1].score + 1e-6  # just above the best score: "a dog" is not grounded any more
    assert grounder.ground(image, ["the red circle", "a dog"])[1] is None


def test_sam2_propagator_yields_one_mask_stack_per_frame(tiny_checkpoints):
    from pite.annotation.propagation import Sam2VideoPropagator

    propagator = Sam2VideoPropagator(tiny_checkpoints["sam2_video"], device="cpu")
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, size=(48, 80, 3), dtype=np.uint8) for _ in range(4)]
    first = np.zeros((2, 48, 80), dtype=bool)
    first[0, 10:30, 10:30] = True
    first[1, 5:40, 40:70] = True
    outputs = list(propagator.propagate(iter(frames), first))
    assert len(outputs) == 4
    assert all(o.shape == (2, 48, 80) and o.dtype == bool for o in outputs)
    # The grounding frame's output is the conditioning mask itself (up to resizing to the model's input and back).
    assert (outputs[0] == first).mean() > 0.95
    with pytest.raises(ValueError, match="bool"):
        list(propagator.propagate(iter(frames), first.astype(np.uint8)))


def test_components_load_their_model_in_eval_mode_on_the_requested_device_and_dtype(tiny_checkpoints):
    import torch

    from pite.annotation.grounding import Owlv2Grounder
    from pite.annotation.propagation import Sam2VideoPropagator
    from pite.annotation.segmentation import SamSegmenter

    components = [
        Owlv2Grounder(tiny_checkpoints["owlv2"], device="cpu", dtype="bfloat16"),
        SamSegmenter(tiny_checkpoints["sam"], device="cpu", dtype="bfloat16"),
        Sam2VideoPropagator(tiny_checkpoints["sam2_video"], device="cpu", dtype="bfloat16"),
    ]
    for component in components:
        assert component.device == torch.device("cpu") and component.dtype == torch.bfloat16
        assert not component.model.training, type(component).__name__
        assert {p.dtype for p in component.model.parameters()} == {torch.bfloat16}, type(component).__name__
        assert {p.device for p in component.model.parameters()} == {torch.device("cpu")}, type(component).__name__
    with pytest.raises(ValueError, match="dtype must be one of.*'float64'"):
        SamSegmenter(tiny_checkpoints["sam"], device="cpu", dtype="float64")
