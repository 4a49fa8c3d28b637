"""The stage-2 (PiTe-143k style) JSONL record the annotator writes, and a strict checker for it.

One video per line (DESIGN.md "Data files"):

    {"video_id": str, "video": str (relative to the videos folder), "duration": float (s),
     "events": [{"caption": str, "start": float, "end": float,
                 "objects": [{"phrase": str, "span": [start, end), "trajectory": P x N x [x, y]}]}]}

`caption[span[0]:span[1]] == phrase`; trajectory values are normalised to [0, 1] (origin top-left, (x, y)) or
exactly -1 for a point not visible or not tracked; a point is either fully -1 or fully inside [0, 1].
The annotator writes nothing else on the line, so a reader need not ignore unknown keys.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator

import numpy as np

RECORD_KEYS = {"video_id", "video", "duration", "events"}
EVENT_KEYS = {"caption", "start", "end", "objects"}
OBJECT_KEYS = {"phrase", "span", "trajectory"}


class Stage2FormatError(ValueError):
    """A stage-2 record that does not follow the format."""


def check_stage2_record(
    record: object, num_key_points: int | None = None, num_frames: int | None = None, where: str = "record"
) -> None:
    """Raise Stage2FormatError naming the first problem of `record`; P and N are checked when given."""

    def fail(path: str, why: str) -> None:
        raise Stage2FormatError(f"{where}{path}: {why}")

    if not isinstance(record, dict):
        fail("", f"expected an object, got {type(record).__name__}")
    if set(record) != RECORD_KEYS:
        fail("", f"keys must be {sorted(RECORD_KEYS)}, got {sorted(record)}")
    for key in ("video_id", "video"):
        if not isinstance(record[key], str) or not record[key]:
            fail(f".{key}", "must be a non-empty string")
    duration = record["duration"]
    if (
        isinstance(duration, bool)
        or not isinstance(duration, (int, float))
        or not duration > 0
        or not math.isfinite(duration)
    ):
        fail(".duration", f"must be a positive number of seconds, got {duration!r}")
    if not isinstance(record["events"], list):
        fail(".events", "must be a list")
    for e, event in enumerate(record["events"]):
        path = f".events[{e}]"
        if not isinstance(event, dict) or set(event) != EVENT_KEYS:
            fail(path, f"must be an object with keys {sorted(EVENT_KEYS)}")
        caption = event["caption"]
        if not isinstance(caption, str) or not caption:
            fail(f"{path}.caption", "must be a non-empty string")
        for key in ("start", "end"):
            value = event[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                fail(f"{path}.{key}", f"must be a non-negative number, got {value!r}")
        if event["end"] < event["start"]:
            fail(path, f"end {event['end']} < start {event['start']}")
        if not isinstance(event["objects"], list):
            fail(f"{path}.objects", "must be a list")
        for o, obj in enumerate(event["objects"]):
            object_path = f"{path}.objects[{o}]"
            if not isinstance(obj, dict) or set(obj) != OBJECT_KEYS:
                fail(object_path, f"must be an object with keys {sorted(OBJECT_KEYS)}")
            span = obj["span"]
            if (
                not isinstance(span, list)
                or len(span) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in span)
                or not 0 <= span[0] < span[1] <= len(caption)
            ):
                fail(
                    f"{object_path}.span",
                    f"must be [start, end) inside the caption (length {len(caption)}), got {span!r}",
                )
            if caption[span[0] : span[1]] != obj["phrase"]:
                fail(
                    f"{object_path}.phrase",
                    f"{obj['phrase']!r} != caption[{span[0]}:{span[1]}] = {caption[span[0] : span[1]]!r}",
                )
            try:
                trajectory = np.asarray(obj["trajectory"], dtype=np.float64)
            except (TypeError, ValueError):
                fail(f"{object_path}.trajectory", "must be a P x N x 2 nested list of numbers")
            if trajectory.ndim != 3 or trajectory.shape[2] != 2:
                fail(f"{object_path}.trajectory", f"must have shape (P, N, 2), got {trajectory.shape}")
            if num_key_points is not None and trajectory.shape[0] != num_key_points:
                fail(f"{object_path}.trajectory", f"has P={trajectory.shape[0]}, expected {num_key_points}")
            if num_frames is not None and trajectory.shape[1] != num_frames:
                fail(f"{object_path}.trajectory", f"has N={trajectory.shape[1]}, expected {num_frames}")
            absent = (trajectory == -1).all(axis=2)
            inside = ((trajectory >= 0) & (trajectory <= 1)).all(axis=2)
            if not (absent | inside).all():
                fail(f"{object_path}.trajectory", "values must be in [0, 1], or [-1, -1] for an absent point")


def read_stage2_jsonl(path: str | os.PathLike, tolerate_truncated_tail: bool = False) -> Iterator[dict]:
    """The records of a stage-2 JSONL file (format not checked: see `check_stage2_record`).

    With `tolerate_truncated_tail`, a last line that is not valid JSON and has no newline (a write cut short) is
    skipped instead of being an error.
    """
    path = os.fspath(path)
    with open(path, encoding="utf-8") as handle:
        lines = handle.readlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as error:
            if tolerate_truncated_tail and number == len(lines) and not line.endswith("\n"):
                return
            raise Stage2FormatError(f"{path}:{number}: not valid JSON ({error.msg})") from None
