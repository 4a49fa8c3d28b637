"""Merging the parts of a multi-process annotation run, in one process (the launched test is
test_sharded_annotation.py): captions order, summary, clean-up; `--shard` and a launch do not mix."""

import json
import os

from pite.annotation import load_captions
from pite.annotation.runner import annotate_videos, annotate_videos_in_processes, part_path
from pite.cli.main import main

from .test_runner import pipeline


class SequentialState:
    """Process `index` of `count`, run one after the other in this process (nothing to wait for)."""

    def __init__(self, index: int, count: int) -> None:
        self.process_index, self.num_processes, self.is_main_process = index, count, index == 0

    def wait_for_everyone(self) -> None:
        pass


def test_parts_merge_into_the_one_process_output(synthetic_world, tmp_path):
    manifest, _ = synthetic_world
    videos, videos_dir = load_captions(manifest.eval_captions), manifest.eval_videos_dir
    reference = tmp_path / "one.jsonl"
    annotate_videos(videos, videos_dir, reference, pipeline(), progress=False)
    out = str(tmp_path / "two.jsonl")
    part, merged = annotate_videos_in_processes(
        videos, videos_dir, out, pipeline(), SequentialState(1, 2), progress=False
    )
    assert merged is None and part.videos_annotated == len(videos[1::2]) and os.path.exists(part_path(out, 1, 2))
    part, merged = annotate_videos_in_processes(
        videos, videos_dir, out, pipeline(), SequentialState(0, 2), progress=False
    )
    assert open(out, encoding="utf-8").read() == reference.read_text(encoding="utf-8")
    one = json.loads(open(f"{reference}.summary.json", encoding="utf-8").read())
    assert merged.counts == one["counts"] and merged.videos_annotated == one["videos_annotated"] == len(videos)
    assert sorted(os.listdir(tmp_path)) == sorted(
        name + suffix for name in ("one.jsonl", "two.jsonl") for suffix in ("", ".failures.jsonl", ".summary.json")
    )


def test_shard_option_under_a_launch_is_a_usage_error(synthetic_world, tmp_path, monkeypatch, capsys):
    manifest, _ = synthetic_world
    monkeypatch.setenv("WORLD_SIZE", "2")
    status = main(
        [
            "annotate",
            "--videos",
            manifest.eval_videos_dir,
            "--captions",
            manifest.eval_captions,
            "--out",
            str(tmp_path / "out.jsonl"),
            "--shard",
            "0/2",
        ]
    )
    assert status == 2
    assert "--shard 0/2 cannot be combined with a launch of 2 processes" in capsys.readouterr().err
