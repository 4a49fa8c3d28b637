"""Stage 2 data: PiTe-143k-style JSONL (DESIGN.md "Data files") + videos -> trajectory-supervised conversations.

One video becomes one multi-turn conversation (VTimeLLM-style tasks, times as two-digit frame indices):
1. dense captioning: "{caption}, from SS to EE." for every event, in order of start time;
2. one question per event, alternating (from a per-video start) between
   temporal grounding (`pite.data.templates.grounding_question`, the evaluation's question:
   "During which frames can we see {caption}?" -> "From SS to EE.") and
   segment captioning ("What is happening from SS to EE?" -> "{caption}.").
Half of the videos (a stable hash of the id) ask their first event question before the dense captioning.
Every grounded noun phrase of a caption written in an answer carries its object's trajectory (P, N, 2) on each of its
tokens; the question text and the times carry none.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Any

import numpy as np

from pite.modeling_pite.losses_pite import ABSENT_COORDINATE
from pite.processing import format_time_span

from .records import BadRecordError, TrainingExample, media_in_folder, require
from .targets import SpanTarget
from .templates import (
    DENSE_CAPTION_ITEM,
    DENSE_CAPTION_QUESTIONS,
    GROUNDING_ANSWER,
    SEGMENT_CAPTION_QUESTIONS,
    grounding_question,
    pick,
)


def _checked_objects(
    event: dict, caption: str, where: str, trajectory_shape: tuple[int, int, int]
) -> list[SpanTarget]:
    """The event's objects as trajectory targets with spans relative to `caption`."""
    objects = []
    for index, item in enumerate(event.get("objects") or []):
        name = f"object {index}"
        if not isinstance(item, dict) or "span" not in item or "trajectory" not in item:
            raise BadRecordError(where, f"{name} must be an object with 'span' and 'trajectory'")
        phrase = item.get("phrase")
        name = f"object {index} ({phrase!r})" if phrase else name
        span = item["span"]
        if not (isinstance(span, (list, tuple)) and len(span) == 2 and all(isinstance(v, int) for v in span)):
            raise BadRecordError(where, f"{name}: span must be two integers [start, end), got {span!r}")
        start, end = span
        if not 0 <= start < end <= len(caption):
            raise BadRecordError(where, f"{name}: span {span} lies outside the caption (length {len(caption)})")
        if phrase is not None and caption[start:end] != phrase:
            raise BadRecordError(where, f"{name}: span {span} covers {caption[start:end]!r}, not the phrase")
        try:
            trajectory = np.asarray(item["trajectory"], dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise BadRecordError(where, f"{name}: trajectory is not a numeric array ({error})") from error
        if trajectory.shape != trajectory_shape:
            raise BadRecordError(
                where, f"{name}: trajectory has shape {trajectory.shape}, expected (P, N, 2) = {trajectory_shape}"
            )
        if not np.isfinite(trajectory).all():
            raise BadRecordError(where, f"{name}: trajectory holds NaN or infinite values (use -1 for absent)")
        absent = (trajectory == ABSENT_COORDINATE).all(axis=-1)
        outside = ~absent & ((trajectory < 0.0) | (trajectory > 1.0)).any(axis=-1)
        if outside.any():
            point, frame = (int(i) for i in np.argwhere(outside)[0])
            raise BadRecordError(
                where,
                f"{name}: trajectory point {point} of frame {frame} is {trajectory[point, frame].tolist()}: "
                f"coordinates must be normalised to [0, 1], or ({ABSENT_COORDINATE:g}, {ABSENT_COORDINATE:g}) where "
                "the object is absent "
                f"({int(outside.sum())} such point(s))",
            )
        objects.append(SpanTarget(span=(start, end), value=trajectory, name=phrase or name))
    return objects


def _shifted(objects: list[SpanTarget], offset: int) -> list[SpanTarget]:
    return [dataclasses.replace(item, span=(item.span[0] + offset, item.span[1] + offset)) for item in objects]


def pite143k_example(
    record: dict[str, Any],
    where: str,
    videos_dir: str,
    num_frames: int,
    num_points: int,
    max_events: int | None = None,
) -> TrainingExample:
    """A `TrainingExample` of one PiTe-143k-style video record; BadRecordError naming the record when unusable.

    Args:
        num_frames: N, the frames the processor samples (the trajectories' time axis, and the time-in-text unit).
        num_points: P, key points per object.
        max_events: keep only the first events (by start time) when set.
    """
    require(record, ("video_id", "video", "duration", "events"), where)
    video_id = str(record["video_id"])
    where = f"{where} (video_id {video_id!r})"
    duration = record["duration"]
    if not isinstance(duration, (int, float)) or not duration > 0:
        raise BadRecordError(where, f"duration must be a positive number of seconds, got {duration!r}")
    events = record["events"]
    if not isinstance(events, list) or not events:
        raise BadRecordError(where, "empty conversation: the record has no events")
    parsed = []
    for index, event in enumerate(events):
        event_where = f"{where} event {index}"
        require(event, ("caption", "start", "end"), event_where)
        caption = event["caption"]
        if not isinstance(caption, str) or not caption.strip():
            raise BadRecordError(event_where, "empty caption")
        try:
            times = format_time_span(float(event["start"]), float(event["end"]), float(duration), num_frames)
        except (TypeError, ValueError) as error:
            raise BadRecordError(event_where, f"bad event time: {error}") from error
        start, end = times.split(" ")[1], times.split(" ")[3]  # "from SS to EE"
        objects = _checked_objects(event, caption, event_where, (num_points, num_frames, 2))
        parsed.append((float(event["start"]), index, caption, start, end, objects))
    parsed.sort(key=lambda item: (item[0], item[1]))
    if max_events is not None:
        parsed = parsed[:max_events]
    path, key = media_in_folder(videos_dir, record["video"], where)

    # Dense captioning of all events, then one question per event, alternating grounding / segment captioning
    # from a per-video start. Targets are positioned within their answer; turn numbers are set once ordered.
    answer_parts, dense_targets, cursor = [], [], 0
    for _, _, caption, start, end, objects in parsed:
        item = DENSE_CAPTION_ITEM.format(caption=caption, start=start, end=end)
        dense_targets += _shifted(objects, cursor + item.index(caption))
        answer_parts.append(item)
        cursor += len(item) + 1  # joined by one space
    turns = [(pick(DENSE_CAPTION_QUESTIONS, video_id, "dense"), " ".join(answer_parts), dense_targets)]
    first_kind = zlib.crc32(f"kind:{video_id}".encode()) % 2
    for position, (_, index, caption, start, end, objects) in enumerate(parsed):
        if (position + first_kind) % 2 == 0:
            question = grounding_question(caption)  # the evaluation's own question (VTimeLLM's), same normalisation
            turns.append((question, GROUNDING_ANSWER.format(start=start, end=end), []))
        else:
            question = pick(SEGMENT_CAPTION_QUESTIONS, f"{video_id}/{index}", "segment").format(start=start, end=end)
            answer = caption if caption.endswith(".") else caption + "."
            turns.append((question, answer, _shifted(objects, 0)))
    # Half of the videos open with an event question instead of the dense captioning: if every conversation
    # opened alike, a model could learn to answer whatever is asked first about a video with dense captions,
    # while evaluation asks single questions.
    if len(turns) > 1 and zlib.crc32(f"order:{video_id}".encode()) % 2:
        turns.insert(0, turns.pop(1))
    messages, targets = [], []
    for turn, (question, answer, turn_targets) in enumerate(turns):
        content = [{"type": "video"}, {"type": "text", "text": question}] if turn == 0 else question
        messages += [{"role": "user", "content": content}, {"role": "assistant", "content": answer}]
        targets += [dataclasses.replace(target, turn=turn) for target in turn_targets]
    return TrainingExample(
        example_id=video_id,
        where=where,
        media_kind="video",
        media_path=path,
        media_key=key,
        messages=messages,
        trajectory_targets=targets,
        duration=float(duration),
    )
