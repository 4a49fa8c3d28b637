"""The geometric steps against known truth: the demo world's videos, with ground-truth (colour) masks plugged in.

The annotator runs end to end through `annotate_videos` on the world's held-out videos and ActivityNet captions,
exactly as `pite annotate` would, with the models replaced by `ColourMasker` / `ColourPropagator`. The truth of a
key point chosen on the grounding frame is known exactly: the world's shapes only translate, so the point moves with
its object's true centre (`scene.centres`); it is visible where the true label map shows the object under it and its
8 neighbours (the world's own rule). Key points are compared at every sampled frame of every event.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from pite.annotation import (
    AnnotationPipeline,
    AnnotatorConfig,
    RuleBasedNounPhraseExtractor,
    annotate_videos,
    load_captions,
)
from pite.annotation.stage2_format import check_stage2_record, read_stage2_jsonl

from .conftest import WORLD_FRAMES, ColourMasker, ColourPropagator


def _truth_visible(labels: np.ndarray, points: np.ndarray, index: int) -> np.ndarray:
    """(P,) bool: the 3x3 pixels around each point (P, 2) are inside the frame and all show object `index`."""
    height, width = labels.shape
    shown = np.zeros(len(points), dtype=bool)
    for p, (x, y) in enumerate(points):
        if not np.isfinite(x):
            continue
        col, row = int(np.floor(x)), int(np.floor(y))
        if 1 <= col < width - 1 and 1 <= row < height - 1:
            shown[p] = bool((labels[row - 1 : row + 2, col - 1 : col + 2] == index).all())
    return shown


@pytest.fixture(scope="module")
def annotated_world(synthetic_world, tmp_path_factory):
    manifest, videos = synthetic_world
    out = tmp_path_factory.mktemp("annotated") / "world.jsonl"
    pipeline = AnnotationPipeline(
        RuleBasedNounPhraseExtractor(), ColourMasker(), ColourPropagator(), AnnotatorConfig(num_frames=WORLD_FRAMES)
    )
    captions = load_captions(manifest.eval_captions)
    annotations = [pipeline.annotate(video, video.resolve(manifest.eval_videos_dir)) for video in captions]
    summary = annotate_videos(captions, manifest.eval_videos_dir, out, pipeline, progress=False)
    return manifest, videos, annotations, out, summary


def test_trajectories_match_known_motion_within_two_percent(annotated_world):
    _, videos, annotations, _, _ = annotated_world
    errors, agreements, events_checked = [], [], 0
    for synthetic, annotation in zip(videos, annotations):
        scene = synthetic.scene
        size = np.array([scene.config.width, scene.config.height], dtype=np.float64)
        assert annotation.video.video_id == scene.video_id
        assert len(annotation.events) == len(scene.events)
        for truth_event, event in zip(scene.events, annotation.events):
            matches = [obj for obj in event.objects if obj.phrase.text == truth_event.phrase]
            assert len(matches) == 1, (
                f"{scene.video_id}: {truth_event.caption!r} -> {[o.phrase for o in event.objects]}"
            )
            obj = matches[0]
            assert obj.phrase.start == 0 and obj.phrase.end == len(truth_event.phrase)
            assert obj.grounding_frame == truth_event.start_frame
            centres = scene.centres[truth_event.object_index] * size  # (T, 2) pixels
            for n, frame in enumerate(annotation.sampled_indices.tolist()):
                predicted = obj.trajectory[:, n]  # (P, 2)
                if not truth_event.start_frame <= frame <= truth_event.end_frame:
                    assert (predicted == -1).all(), "outside the event's window every point must be -1"
                    continue
                expected = obj.key_points + (centres[frame] - centres[truth_event.start_frame])
                truth = _truth_visible(synthetic.labels[frame], expected, truth_event.object_index)
                shown = (predicted >= 0).all(axis=1)
                assert ((predicted == -1).all(axis=1) | shown).all()
                agreements.extend(truth == shown)
                both = truth & shown
                errors.extend(np.linalg.norm(predicted[both] - expected[both] / size, axis=1))
            events_checked += 1
    assert events_checked >= 8 and len(errors) >= 200  # enough evidence
    assert np.mean(errors) < 0.02, f"mean error {np.mean(errors):.4f} of the frame size"
    assert np.mean(agreements) > 0.95, f"visibility agrees with the truth on {np.mean(agreements):.1%} of points"


def test_key_points_are_kmeans_centres_of_the_true_object(annotated_world):
    """Each key point is the mean of the true object's pixels nearest to it (a k-means fixed point), within 0.6 px."""
    _, videos, annotations, _, _ = annotated_world
    checked = 0
    for synthetic, annotation in zip(videos, annotations):
        for truth_event, event in zip(synthetic.scene.events, annotation.events):
            for obj in event.objects:
                rows, cols = np.nonzero(synthetic.labels[obj.grounding_frame] == truth_event.object_index)
                pixels = np.stack([cols + 0.5, rows + 0.5], axis=1)
                nearest = np.argmin(((pixels[:, None] - obj.key_points[None]) ** 2).sum(axis=2), axis=1)
                for p, point in enumerate(obj.key_points):
                    assert np.linalg.norm(pixels[nearest == p].mean(axis=0) - point) < 0.6
                    checked += 1
                order = np.lexsort((obj.key_points[:, 0], obj.key_points[:, 1]))
                assert order.tolist() == list(range(len(order))), "key points are ordered top-to-bottom, left-to-right"
    assert checked >= 24


def test_written_file_is_stage2_format_and_equals_the_annotations(annotated_world):
    manifest, videos, annotations, out, summary = annotated_world
    records = list(read_stage2_jsonl(out))
    assert [r["video_id"] for r in records] == [v.scene.video_id for v in videos]
    for record, annotation in zip(records, annotations):
        check_stage2_record(record, num_key_points=3, num_frames=WORLD_FRAMES)
        assert record == json.loads(json.dumps(annotation.to_record(record["video"])))
        assert record["video"] == f"{record['video_id']}.mp4"
    assert summary.videos_annotated == len(videos) and summary.videos_failed == 0
    assert summary.counts["objects"] == sum(len(e.objects) for a in annotations for e in a.events)
    # The world's captions also name places ("moves to the left"): filtered, and counted.
    assert summary.counts["dropped_non_object"] > 0
    assert summary.counts["phrases"] == summary.counts["objects"] + sum(
        value for key, value in summary.counts.items() if key.startswith("dropped_")
    )


def test_demo_world_truth_passes_the_same_format_check(synthetic_world):
    """The generator's stage-2 files and the annotator's output follow one format: the checker accepts both."""
    manifest, _ = synthetic_world
    for path in (manifest.stage2_annotations, manifest.eval_trajectories):
        for record in read_stage2_jsonl(path):
            check_stage2_record(record, num_key_points=3, num_frames=WORLD_FRAMES)


def test_written_file_is_read_by_the_stage2_training_loader(annotated_world):
    """The annotator's lines become training conversations as they are: no conversion step."""
    from pite.data.pite143k import pite143k_example

    manifest, _, annotations, out, _ = annotated_world
    for number, record in enumerate(read_stage2_jsonl(out), start=1):
        example = pite143k_example(
            record, f"{out}:{number}", manifest.eval_videos_dir, num_frames=WORLD_FRAMES, num_points=3
        )
        phrases = [obj["phrase"] for event in record["events"] for obj in event["objects"]]
        dense = [t for t in example.trajectory_targets if t.turn == 0]
        assert sorted(t.name for t in dense) == sorted(phrases)
        answer = example.messages[1]["content"]
        for target in dense:
            assert answer[target.span[0] : target.span[1]] == target.name
            assert np.asarray(target.value).shape == (3, WORLD_FRAMES, 2)
