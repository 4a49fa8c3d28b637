"""Annotating one captioned video: phrases -> first-frame masks -> propagation -> P key trajectories per object.

Per event:
1. noun phrases of the caption (`NounPhraseExtractor`), filtered (`NonObjectPhraseFilter`: "the left", "the camera");
2. the event's window of source frames: from the frame nearest its start to the frame nearest its end (or to the
   end of the video with `track_until="video_end"`);
3. every kept phrase is masked on the window's first frame (`FirstFrameMasker`, default OWLv2 boxes + SAM masks);
   phrases that fail, or whose mask is smaller than `min_object_area` of the frame, are dropped;
4. k-means++ picks P key points in each mask; the masks are propagated over the window's tracking frames
   (`Propagator`, default SAM2 video); each object's key points follow its mask (`KeyPointFollower`);
5. the key points are read at the N frames sampled from the whole video; -1 outside the window or where not visible.
   An object with no visible key point on any sampled frame is dropped ("never_visible").
Every drop is counted by reason; the caption, times and duration are written unchanged.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pite.processing.video_reading_pite import sample_frame_indices

from .captions import CaptionedEvent, CaptionedVideo
from .components import FirstFrameMasker, Propagator
from .keypoints import KeyPointFollower, sampled_trajectory, select_key_points
from .phrases import NonObjectPhraseFilter, NounPhrase, NounPhraseExtractor
from .video_frames import VideoFrames, event_frame_window, tracking_frames

TRACK_UNTIL = ("event_end", "video_end")
# A caption's duration this far (relative) from the decoded video's is counted as a mismatch in the summary.
DURATION_MISMATCH = 0.05


@dataclass(frozen=True)
class AnnotatorConfig:
    """Settings of the geometric steps.

    Attributes:
        num_frames: N, frames sampled from the whole video for trajectories (DESIGN.md: 100).
        num_key_points: P, key trajectories per object (paper: 3).
        min_object_area: smallest kept mask, as a fraction of the frame's pixels.
        track_fps: frames a second the propagator sees between sampled frames (None: every source frame).
        track_until: "event_end" tracks within the event, "video_end" from the event's start to the video's end.
        visibility_margin: pixels around a key point that must belong to the mask for it to be visible.
        estimate_scale: key points follow the mask's scale as well as its translation.
        seed: seeds k-means++ (per video, event and phrase, so results do not depend on processing order).
        decimals: rounding of the written coordinates.
    """

    num_frames: int = 100
    num_key_points: int = 3
    min_object_area: float = 0.0005
    track_fps: float | None = 6.0
    track_until: str = "event_end"
    visibility_margin: int = 1
    estimate_scale: bool = True
    seed: int = 0
    decimals: int = 5

    def __post_init__(self) -> None:
        def fail(name: str, why: str) -> None:
            raise ValueError(f"AnnotatorConfig.{name}: {why} (got {getattr(self, name)!r})")

        if not isinstance(self.num_frames, int) or self.num_frames < 1:
            fail("num_frames", "must be an int >= 1")
        if not isinstance(self.num_key_points, int) or self.num_key_points < 1:
            fail("num_key_points", "must be an int >= 1")
        if not 0 <= self.min_object_area < 1:
            fail("min_object_area", "must be a fraction in [0, 1)")
        if self.track_fps is not None and not self.track_fps > 0:
            fail("track_fps", "must be > 0, or None for every frame")
        if self.track_until not in TRACK_UNTIL:
            fail("track_until", f"must be one of {TRACK_UNTIL}")
        if not isinstance(self.visibility_margin, int) or self.visibility_margin < 0:
            fail("visibility_margin", "must be an int >= 0")
        if not isinstance(self.decimals, int) or self.decimals < 1:
            fail("decimals", "must be an int >= 1")


@dataclass
class ObjectAnnotation:
    """One tracked phrase. trajectory (P, N, 2) normalised, -1 absent; key_points (P, 2) pixels in the grounding
    frame."""

    phrase: NounPhrase
    trajectory: np.ndarray
    key_points: np.ndarray
    grounding_frame: int
    mask_area: int


@dataclass
class EventAnnotation:
    """An event, its tracking window (first, last source frame; None if it starts after the video) and objects."""

    event: CaptionedEvent
    window: tuple[int, int] | None
    objects: list[ObjectAnnotation] = field(default_factory=list)


@dataclass
class VideoAnnotation:
    """Everything found for one video; `to_record()` is its stage-2 JSONL line. `counts` feeds the run summary."""

    video: CaptionedVideo
    video_path: str
    duration: float
    width: int
    height: int
    num_source_frames: int
    sampled_indices: np.ndarray
    events: list[EventAnnotation]
    counts: Counter

    def to_record(self, relative_video: str, decimals: int = 5) -> dict:
        """The stage-2 record (DESIGN.md "Data files"); `relative_video` is the path under the videos folder."""
        events = []
        for item in self.events:
            objects = [
                {
                    "phrase": obj.phrase.text,
                    "span": [obj.phrase.start, obj.phrase.end],
                    "trajectory": np.round(obj.trajectory, decimals).tolist(),
                }
                for obj in item.objects
            ]
            events.append(
                {"caption": item.event.caption, "start": item.event.start, "end": item.event.end, "objects": objects}
            )
        return {"video_id": self.video.video_id, "video": relative_video, "duration": self.duration, "events": events}


class AnnotationPipeline:
    """Annotates captioned videos with the given components (see the module docstring).

    Args:
        phrase_extractor: caption -> noun phrases.
        masker: first frame + phrases -> masks.
        propagator: frames + first-frame masks -> per-frame masks.
        config: the geometric settings.
        phrase_filter: phrase -> drop reason or None.
    """

    def __init__(
        self,
        phrase_extractor: NounPhraseExtractor,
        masker: FirstFrameMasker,
        propagator: Propagator,
        config: AnnotatorConfig | None = None,
        phrase_filter: NonObjectPhraseFilter | None = None,
    ) -> None:
        self.phrase_extractor = phrase_extractor
        self.masker = masker
        self.propagator = propagator
        self.config = config or AnnotatorConfig()
        self.phrase_filter = phrase_filter or NonObjectPhraseFilter()

    def annotate(self, video: CaptionedVideo, video_path: str | Path) -> VideoAnnotation:
        """Annotate every event of `video` read from `video_path`. Raises on unreadable videos."""
        frames = VideoFrames(video_path)
        counts: Counter = Counter()
        duration = video.duration if video.duration is not None else frames.duration
        if abs(duration - frames.duration) > DURATION_MISMATCH * frames.duration:
            counts["videos_with_duration_mismatch"] += 1
        sampled = sample_frame_indices(frames.num_frames, self.config.num_frames)
        events = [
            self._annotate_event(video, index, event, frames, sampled, counts)
            for index, event in enumerate(video.events)
        ]
        counts["events"] += len(events)
        counts["objects"] += sum(len(e.objects) for e in events)
        return VideoAnnotation(
            video=video,
            video_path=str(video_path),
            duration=float(duration),
            width=frames.width,
            height=frames.height,
            num_source_frames=frames.num_frames,
            sampled_indices=sampled,
            events=events,
            counts=counts,
        )

    def _phrases(self, caption: str, counts: Counter) -> list[NounPhrase]:
        kept = []
        for phrase in self.phrase_extractor(caption):
            if caption[phrase.start : phrase.end] != phrase.text:
                raise RuntimeError(
                    f"{type(self.phrase_extractor).__name__} returned {phrase.text!r} at {phrase.start}:{phrase.end}, "
                    f"but the caption there reads {caption[phrase.start : phrase.end]!r}"
                )
            counts["phrases"] += 1
            reason = self.phrase_filter(phrase)
            if reason is None:
                kept.append(phrase)
            else:
                counts[f"dropped_{reason}"] += 1
        return kept

    def _annotate_event(
        self,
        video: CaptionedVideo,
        event_index: int,
        event: CaptionedEvent,
        frames: VideoFrames,
        sampled: np.ndarray,
        counts: Counter,
    ) -> EventAnnotation:
        cfg = self.config
        phrases = self._phrases(event.caption, counts)
        window = event_frame_window(frames.timestamps, event.start, event.end, frames.duration)
        result = EventAnnotation(event, window)
        if window is None:
            counts["events_outside_video"] += 1
            counts["dropped_event_outside_video"] += len(phrases)
            return result
        first, last = window[0], (window[1] if cfg.track_until == "event_end" else frames.num_frames - 1)
        if not ((sampled >= first) & (sampled <= last)).any():
            counts["events_without_sampled_frame"] += 1
            counts["dropped_no_sampled_frame"] += len(phrases)
            return result
        if not phrases:
            return result

        grounding_frame = frames.read([first])[0]
        masks = self.masker.masks(grounding_frame, [p.text for p in phrases])
        if len(masks) != len(phrases):
            raise RuntimeError(f"{type(self.masker).__name__} returned {len(masks)} masks for {len(phrases)} phrases")
        min_pixels = max(cfg.num_key_points, int(np.ceil(cfg.min_object_area * frames.width * frames.height)))
        candidates: list[tuple[NounPhrase, np.ndarray, np.ndarray]] = []
        for phrase_index, (phrase, mask) in enumerate(zip(phrases, masks)):
            if isinstance(mask, str):
                counts[f"dropped_{mask}"] += 1
                continue
            mask = np.asarray(mask)
            if mask.shape != (frames.height, frames.width) or mask.dtype != bool:
                raise RuntimeError(
                    f"{type(self.masker).__name__} returned a mask {mask.shape} {mask.dtype}, expected "
                    f"{(frames.height, frames.width)} bool"
                )
            if int(mask.sum()) < min_pixels:
                counts["dropped_too_small"] += 1
                continue
            rng = np.random.default_rng([cfg.seed, zlib.crc32(video.video_id.encode()), event_index, phrase_index])
            candidates.append((phrase, mask, select_key_points(mask, cfg.num_key_points, rng)))
        if not candidates:
            return result

        followers = [
            KeyPointFollower(mask, points, cfg.estimate_scale, cfg.visibility_margin) for _, mask, points in candidates
        ]
        located: list[dict[int, tuple[np.ndarray, np.ndarray]]] = [{} for _ in candidates]
        frame_indices = tracking_frames(first, last, sampled, frames.fps, cfg.track_fps)
        first_masks = np.stack([mask for _, mask, _ in candidates])
        propagated = 0
        for frame_index, frame_masks in zip(
            frame_indices.tolist(), self.propagator.propagate(frames.iter_frames(frame_indices), first_masks)
        ):
            if frame_masks.shape != first_masks.shape:
                raise RuntimeError(
                    f"{type(self.propagator).__name__} yielded masks {frame_masks.shape}, expected {first_masks.shape}"
                )
            for follower, found, mask in zip(followers, located, frame_masks):
                found[frame_index] = follower.locate(np.asarray(mask, dtype=bool))
            propagated += 1
        if propagated != len(frame_indices):
            raise RuntimeError(
                f"{type(self.propagator).__name__} yielded {propagated} frames of masks for "
                f"{len(frame_indices)} frames"
            )
        counts["tracked_frames"] += propagated

        for (phrase, mask, points), found in zip(candidates, located):
            trajectory = sampled_trajectory(sampled, found, frames.width, frames.height, cfg.num_key_points)
            if not (trajectory[..., 0] >= 0).any():
                counts["dropped_never_visible"] += 1
                continue
            result.objects.append(ObjectAnnotation(phrase, trajectory, points, first, int(mask.sum())))
        return result
