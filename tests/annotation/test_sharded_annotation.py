"""`pite annotate` under torchrun (2 CPU processes, gloo), with the colour stand-ins for the models: the processes'
parts merge into the file one process writes, and a killed process's part resumes without redoing its videos."""

import json
import os
import subprocess
import sys
import time

import pytest

import pite.annotation.cli as annotation_cli
from pite.annotation import load_captions
from pite.annotation.runner import part_path, partial_path
from pite.cli.main import main

from ..training.launching import TORCHRUN_TWO_PROCESSES, launch_and_kill_one, launch_env
from .conftest import WORLD_FRAMES

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sharded_worker.py")


@pytest.fixture
def six_videos(synthetic_world, tmp_path):
    """Captions JSONL of six entries (the three held-out videos twice, under new ids): process 1 takes 1, 3, 5."""
    manifest, _ = synthetic_world
    lines = []
    for copy in range(2):
        for video in load_captions(manifest.eval_captions):
            path = video.resolve(manifest.eval_videos_dir)
            events = [{"caption": e.caption, "start": e.start, "end": e.end} for e in video.events[:2]]
            lines.append({"video_id": f"{video.video_id}_{copy}", "video": path.name, "events": events})
    captions = tmp_path / "captions.jsonl"
    captions.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return str(captions), manifest.eval_videos_dir, [line["video_id"] for line in lines]


def _arguments(videos_dir: str, captions: str, out: str) -> list[str]:
    return [
        "--videos",
        videos_dir,
        "--captions",
        captions,
        "--out",
        out,
        "--num-frames",
        str(WORLD_FRAMES),
        "--no-progress",
    ]


@pytest.mark.slow
def test_two_processes_write_the_one_process_output_and_a_killed_part_resumes(six_videos, tmp_path, monkeypatch):
    captions, videos_dir, ids = six_videos
    sys.path.insert(0, os.path.dirname(WORKER))
    try:
        from sharded_worker import stand_in_pipeline
    finally:
        sys.path.remove(os.path.dirname(WORKER))
    monkeypatch.setattr(annotation_cli, "build_pipeline", stand_in_pipeline)
    reference = str(tmp_path / "one.jsonl")
    assert main(["annotate", *_arguments(videos_dir, captions, reference)]) == 0

    out = str(tmp_path / "two.jsonl")
    launch = [*TORCHRUN_TWO_PROCESSES, WORKER]

    def hanging_pid(launcher) -> int:
        time.sleep(0.2)  # the pid file is written before its content
        return int(open(out + ".hanging-pid", encoding="utf-8").read())

    launch_and_kill_one(
        [*launch, "--hang", ids[3], *_arguments(videos_dir, captions, out)],
        launch_env(),
        lambda: os.path.exists(out + ".hanging-pid") and os.path.exists(part_path(out, 0, 2)),
        hanging_pid,
    )
    assert not os.path.exists(out), "OUT is written once every process has finished"
    with open(partial_path(part_path(out, 1, 2)), encoding="utf-8") as handle:
        assert [json.loads(line)["video_id"] for line in handle] == [ids[1]]

    result = subprocess.run(
        [*launch, *_arguments(videos_dir, captions, out)],
        env=launch_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert "process 0 of 2: annotated 0 videos (3 already done, 0 failed)" in result.stdout
    assert "process 1 of 2: annotated 2 videos (1 already done, 0 failed)" in result.stdout
    assert open(out, encoding="utf-8").read() == open(reference, encoding="utf-8").read()
    one, two = (json.load(open(path + ".summary.json", encoding="utf-8")) for path in (reference, out))
    # Like a resumed one-process run, the summary counts what this run annotated: videos 3 and 5.
    assert (two["videos_annotated"], two["videos_already_done"], two["videos_in_shard"]) == (2, 4, 6)
    records = {json.loads(line)["video_id"]: json.loads(line) for line in open(out, encoding="utf-8")}
    objects = sum(len(event["objects"]) for i in (3, 5) for event in records[ids[i]]["events"])
    assert two["counts"]["objects"] == objects > 0 and two["counts"]["events"] == 4
    assert one["counts"]["objects"] == sum(len(e["objects"]) for r in records.values() for e in r["events"])
    assert two["settings"] == {**one["settings"], "processes": 2}
    suffixes = ("", ".failures.jsonl", ".summary.json")
    expected = [name + suffix for name in ("one.jsonl", "two.jsonl") for suffix in suffixes]
    assert sorted(os.listdir(tmp_path)) == sorted(expected + ["captions.jsonl", "two.jsonl.hanging-pid"]), (
        "the parts are merged and removed"
    )
