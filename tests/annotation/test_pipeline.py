"""Per-event decisions of the pipeline: filters and their counts, windows, and checks on plugged-in components."""

from __future__ import annotations

import numpy as np
import pytest

from pite.annotation import (
    AnnotationPipeline,
    AnnotatorConfig,
    CaptionedEvent,
    CaptionedVideo,
    Detection,
    GroundAndSegment,
    NounPhrase,
    RuleBasedNounPhraseExtractor,
)
from pite.annotation.grounding import owlv2_pixel_values
from pite.processing.video_reading_pite import sample_frame_indices

from .conftest import ColourMasker, ColourPropagator

N = 10


class VanishingPropagator(ColourPropagator):
    """True masks on the grounding frame, nothing afterwards (the tracker loses every object)."""

    def propagate(self, frames, first_masks):
        for index, masks in enumerate(super().propagate(frames, first_masks)):
            yield masks if index == 0 else np.zeros_like(masks)


class ShrunkMasker(ColourMasker):
    """True masks cut down to a single pixel."""

    def masks(self, image, phrases):
        out = []
        for mask in super().masks(image, phrases):
            if isinstance(mask, np.ndarray):
                single = np.zeros_like(mask)
                single[tuple(np.argwhere(mask)[0])] = True
                mask = single
            out.append(mask)
        return out


@pytest.fixture(scope="module")
def clip(synthetic_world):
    """(video path, SyntheticVideo, sampled indices at N) of the first held-out video."""
    manifest, videos = synthetic_world
    return manifest.eval_videos[0], videos[0], sample_frame_indices(videos[0].scene.num_source_frames, N)


def run(clip, events, masker=None, propagator=None, extractor=None, **config):
    path, synthetic, _ = clip
    video = CaptionedVideo(synthetic.scene.video_id, None, None, events, "test")
    pipeline = AnnotationPipeline(
        extractor or RuleBasedNounPhraseExtractor(),
        masker or ColourMasker(),
        propagator or ColourPropagator(),
        AnnotatorConfig(num_frames=N, **config),
    )
    return pipeline.annotate(video, path)


def test_filters_are_counted_and_events_kept(clip):
    _, synthetic, sampled = clip
    scene = synthetic.scene
    event = scene.events[0]
    unsampled = next(i for i in range(scene.num_source_frames) if i not in set(sampled.tolist()))
    fps = scene.config.fps
    events = [
        CaptionedEvent(f"{event.phrase} stops near the camera", event.start, event.end),  # an object, a non-object
        CaptionedEvent("the orange thing stops", event.start, event.end),  # no colour to find: not grounded
        CaptionedEvent(f"{event.phrase} stops", scene.duration + 1, scene.duration + 2),  # after the video
        CaptionedEvent(f"{event.phrase} stops", unsampled / fps, unsampled / fps),  # no sampled frame inside
    ]
    annotation = run(clip, events)
    counts = annotation.counts
    assert [len(e.objects) for e in annotation.events] == [1, 0, 0, 0]
    assert counts["dropped_non_object"] == 1 and counts["dropped_not_grounded"] == 1
    assert counts["events_outside_video"] == 1 and counts["dropped_event_outside_video"] == 1
    assert counts["events_without_sampled_frame"] == 1 and counts["dropped_no_sampled_frame"] == 1
    assert annotation.events[2].window is None
    record = annotation.to_record("x.mp4")
    assert [e["caption"] for e in record["events"]] == [e.caption for e in events], "captions are written unchanged"
    assert record["duration"] == pytest.approx(annotation.duration) and annotation.duration == pytest.approx(
        scene.duration
    )


def test_too_small_and_never_visible_objects_are_dropped(clip):
    _, synthetic, sampled = clip
    event = synthetic.scene.events[0]
    events = [CaptionedEvent(event.caption, event.start, event.end)]
    assert run(clip, events, masker=ShrunkMasker()).counts["dropped_too_small"] == 1
    # Lost after the grounding frame: kept only if the grounding frame is itself a sampled frame.
    lost = run(clip, events, propagator=VanishingPropagator())
    grounded_on_sampled = event.start_frame in set(sampled.tolist())
    assert len(lost.events[0].objects) == int(grounded_on_sampled)
    assert lost.counts["dropped_never_visible"] == int(not grounded_on_sampled)


def test_video_end_tracking_extends_past_the_event(clip):
    _, synthetic, sampled = clip
    event = next(e for e in synthetic.scene.events if e.end_frame < sampled[-2])
    events = [CaptionedEvent(event.caption, event.start, event.end)]
    within = run(clip, events).events[0].objects[0].trajectory
    after = run(clip, events, track_until="video_end").events[0].objects[0].trajectory
    later = sampled > event.end_frame
    assert (within[:, later] == -1).all()
    assert (after[:, later] >= 0).any(), "the object is still tracked after its event"
    np.testing.assert_allclose(after[:, ~later], within[:, ~later])


def test_components_that_break_their_contract_are_named(clip):
    _, synthetic, _ = clip
    events = [CaptionedEvent(synthetic.scene.events[0].caption, 0.0, 1.0)]

    class BadSpans:
        def __call__(self, caption):
            return [NounPhrase("the red circle", 3, 17)]

    with pytest.raises(RuntimeError, match="BadSpans returned 'the red circle' at 3:17"):
        run(clip, events, extractor=BadSpans())

    class WrongShape(ColourMasker):
        def masks(self, image, phrases):
            return [np.ones((4, 4), dtype=bool) for _ in phrases]

    with pytest.raises(RuntimeError, match=r"WrongShape returned a mask \(4, 4\) bool"):
        run(clip, events, masker=WrongShape())


def test_ground_and_segment_reports_why_a_phrase_has_no_mask():
    class Grounder:
        def ground(self, image, phrases):
            return [Detection((1, 1, 5, 5), 0.9), None, Detection((0, 0, 2, 2), 0.5)]

    class Segmenter:
        def segment(self, image, boxes):
            assert boxes.tolist() == [[1, 1, 5, 5], [0, 0, 2, 2]], "only grounded phrases are segmented, in one call"
            masks = np.zeros((2, 8, 8), dtype=bool)
            masks[0, 1:5, 1:5] = True
            return masks

    masks = GroundAndSegment(Grounder(), Segmenter()).masks(np.zeros((8, 8, 3), np.uint8), ["a", "b", "c"])
    assert masks[0].sum() == 16 and masks[1:] == ["not_grounded", "empty_mask"]


def test_owlv2_preprocessing_pads_blurs_resizes_and_normalises():
    image = np.full((32, 64, 3), 255, dtype=np.uint8)
    mean, std = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
    same = owlv2_pixel_values(image[:, :32], (32, 32), mean, std)  # square at target size: normalisation only
    np.testing.assert_allclose(same.numpy(), 2.0, atol=1e-6)
    pixels = owlv2_pixel_values(image, (16, 16), mean, std)[0]
    assert pixels.shape == (3, 16, 16)
    np.testing.assert_allclose(pixels[:, :6].numpy(), 2.0, atol=1e-5)  # image rows, far from the padding
    np.testing.assert_allclose(pixels[:, 10:].numpy(), -2.0, atol=1e-5)  # zero padding at the bottom
    assert -2.0 < float(pixels[0, 8, 0]) < 2.0, "the anti-aliasing blur mixes the border"
