"""Running over many videos: interruption and resume, per-video failures, shards, atomic final files."""

from __future__ import annotations

import json
import os

import pytest

from pite.annotation import (
    AnnotationPipeline,
    AnnotatorConfig,
    RuleBasedNounPhraseExtractor,
    annotate_videos,
    load_captions,
)
from pite.annotation.runner import partial_path
from pite.annotation.stage2_format import Stage2FormatError

from .conftest import WORLD_FRAMES, ColourMasker, ColourPropagator


class FailingPropagator(ColourPropagator):
    """Raises `error` while propagating the video whose first frame it sees on the `fail_on`-th call."""

    def __init__(self, fail_on: int, error: BaseException) -> None:
        self.calls, self.fail_on, self.error = 0, fail_on, error

    def propagate(self, frames, first_masks):
        self.calls += 1
        if self.calls == self.fail_on:
            raise self.error
        yield from super().propagate(frames, first_masks)


def pipeline(propagator=None) -> AnnotationPipeline:
    return AnnotationPipeline(
        RuleBasedNounPhraseExtractor(),
        ColourMasker(),
        propagator or ColourPropagator(),
        AnnotatorConfig(num_frames=WORLD_FRAMES),
    )


@pytest.fixture(scope="module")
def world_inputs(synthetic_world):
    manifest, _ = synthetic_world
    return load_captions(manifest.eval_captions), manifest.eval_videos_dir


@pytest.fixture(scope="module")
def reference_output(world_inputs, tmp_path_factory):
    videos, videos_dir = world_inputs
    out = tmp_path_factory.mktemp("reference") / "ref.jsonl"
    annotate_videos(videos, videos_dir, out, pipeline(), progress=False)
    return out.read_text(encoding="utf-8")


def test_interrupted_run_resumes_to_the_same_output(world_inputs, reference_output, tmp_path):
    videos, videos_dir = world_inputs
    out = tmp_path / "out.jsonl"
    first_event_count = len(videos[0].events)
    # Interrupt (Ctrl-C) while the second video is being propagated.
    interrupt = FailingPropagator(fail_on=first_event_count + 1, error=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        annotate_videos(videos, videos_dir, out, pipeline(interrupt), progress=False)
    assert not out.exists(), "OUT is only written when a run finishes"
    partial = partial_path(out)
    lines = open(partial, encoding="utf-8").read().splitlines()
    assert [json.loads(line)["video_id"] for line in lines] == [videos[0].video_id]
    with open(partial, "a", encoding="utf-8") as handle:  # and a write cut short by a crash
        handle.write('{"video_id": "' + videos[1].video_id + '", "vid')

    summary = annotate_videos(videos, videos_dir, out, pipeline(), progress=False)
    assert summary.videos_already_done == 1 and summary.videos_annotated == len(videos) - 1
    assert out.read_text(encoding="utf-8") == reference_output
    assert not os.path.exists(partial)

    again = annotate_videos(videos, videos_dir, out, pipeline(), progress=False)
    assert again.videos_already_done == len(videos) and again.videos_annotated == 0
    assert out.read_text(encoding="utf-8") == reference_output


def test_a_failing_video_is_recorded_and_the_run_goes_on(world_inputs, tmp_path):
    videos, videos_dir = world_inputs
    out = tmp_path / "out.jsonl"
    failing = FailingPropagator(fail_on=len(videos[0].events) + 1, error=RuntimeError("tracker exploded"))
    summary = annotate_videos(videos, videos_dir, out, pipeline(failing), progress=False)
    assert summary.videos_failed == 1 and summary.videos_annotated == len(videos) - 1
    written = [json.loads(line)["video_id"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert written == [videos[0].video_id] + [v.video_id for v in videos[2:]]
    failures = [json.loads(line) for line in open(f"{out}.failures.jsonl", encoding="utf-8")]
    assert failures == [
        {"video_id": videos[1].video_id, "where": videos[1].where, "error": "RuntimeError: tracker exploded"}
    ]
    saved = json.loads(open(f"{out}.summary.json", encoding="utf-8").read())
    assert saved["videos_failed"] == 1 and saved["counts"]["objects"] == summary.counts["objects"] > 0
    # The failed video is retried by the next run.
    retry = annotate_videos(videos, videos_dir, out, pipeline(), progress=False)
    assert retry.videos_annotated == 1 and retry.videos_failed == 0
    assert open(f"{out}.failures.jsonl", encoding="utf-8").read() == ""


def test_shards_and_limit_split_the_work(world_inputs, tmp_path):
    videos, videos_dir = world_inputs
    summary = annotate_videos(videos, videos_dir, tmp_path / "s1.jsonl", pipeline(), shard=(1, 2), progress=False)
    assert summary.videos_in_shard == len(videos[1::2]) and summary.videos_annotated == len(videos[1::2])
    ids = [json.loads(line)["video_id"] for line in (tmp_path / "s1.jsonl").read_text(encoding="utf-8").splitlines()]
    assert ids == [v.video_id for v in videos[1::2]]
    limited = annotate_videos(videos, videos_dir, tmp_path / "l.jsonl", pipeline(), limit=1, progress=False)
    assert limited.videos_annotated == 1
    with pytest.raises(ValueError, match="shard must be"):
        annotate_videos(videos, videos_dir, tmp_path / "x.jsonl", pipeline(), shard=(2, 2))


def test_a_corrupt_existing_output_is_an_error_not_a_silent_restart(world_inputs, tmp_path):
    videos, videos_dir = world_inputs
    out = tmp_path / "out.jsonl"
    out.write_text('{"video_id": "a"}\nnot json\n{"video_id": "b"}\n', encoding="utf-8")
    with pytest.raises(Stage2FormatError, match=r"out.jsonl:2: not valid JSON"):
        annotate_videos(videos, videos_dir, out, pipeline(), progress=False)


def test_a_run_stopped_between_merge_and_cleanup_leaves_no_duplicates(world_inputs, reference_output, tmp_path):
    videos, videos_dir = world_inputs
    out = tmp_path / "out.jsonl"
    out.write_text(reference_output, encoding="utf-8")
    with open(partial_path(out), "w", encoding="utf-8") as handle:  # the merged lines are still in the partial file
        handle.write(reference_output.splitlines(keepends=True)[-1])
    summary = annotate_videos(videos, videos_dir, out, pipeline(), progress=False)
    assert summary.videos_annotated == 0 and summary.videos_already_done == len(videos)
    assert out.read_text(encoding="utf-8") == reference_output
