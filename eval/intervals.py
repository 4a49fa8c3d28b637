"""Time intervals: validation, temporal IoU, and reading VTimeLLM frame spans out of model answers.

An interval is a `(start, end)` pair of seconds with `start <= end`.

Conventions (the edge cases are deliberate and tested):
- Touching intervals (`[0, 5]` and `[5, 10]`) share no time: IoU 0.
- Zero-length intervals have no temporal extent: their IoU with anything, themselves included, is 0.
- `temporal_iou` refuses reversed intervals (`start > end`) with a `ValueError`: a reversed ground truth is a data
  error.
  A reversed *prediction* read from text (``"45 to 12"``) is a wrong answer, not an error: the parsers below return
  `None` for it, and the grounding metric scores `None` as IoU 0.

Time in text (DESIGN.md, VTimeLLM) is `pite.processing.time_pite`'s, the one place for it: an answer names
two-digit indices of the N sampled frames, found with the regex `(\\d{2}) (to|and) (\\d{2})` (unanchored, exactly as
VTimeLLM's evaluation does, so "100 to 200" reads as "00 to 20"); span `(s, e)` covers the seconds
`[s * duration / N, (e + 1) * duration / N]`. What this module adds is the evaluation's policy for answers that name
no usable span (first span only for grounding; reversed or out-of-range spans are wrong answers, not errors).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pite.processing.time_pite import TIME_SPAN_PATTERN, frame_index_span_to_seconds, parse_frame_index_spans

Interval = tuple[float, float]

DEFAULT_NUM_FRAMES = 100


def validate_interval(interval: Sequence[float], what: str) -> Interval:
    """Return `interval` as a `(start, end)` float tuple, or raise a `ValueError` naming `what`.

    Refuses anything that is not two finite numbers with `start <= end`.
    """
    if isinstance(interval, (str, bytes)) or not isinstance(interval, Sequence) or len(interval) != 2:
        raise ValueError(f"{what}: expected an interval [start, end] of two numbers, got {interval!r}")
    start, end = interval
    for value in (start, end):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{what}: interval bounds must be finite numbers, got {interval!r}")
    if start > end:
        raise ValueError(f"{what}: reversed interval {list(interval)!r} (start > end)")
    return float(start), float(end)


def temporal_iou(first: Sequence[float], second: Sequence[float]) -> float:
    """Exact intersection over union of two intervals of seconds; 0 for touching or zero-length intervals.

    Raises `ValueError` for reversed or non-finite intervals.
    """
    start_a, end_a = validate_interval(first, "first interval")
    start_b, end_b = validate_interval(second, "second interval")
    intersection = max(0.0, min(end_a, end_b) - max(start_a, start_b))
    if intersection == 0.0:
        return 0.0
    union = max(end_a, end_b) - min(start_a, start_b)
    return intersection / union


def parse_frame_span(text: str) -> tuple[int, int] | None:
    """The first `"SS to EE"` / `"SS and EE"` frame span of an answer as `(SS, EE)`, or `None` if there is none.

    The span is returned as written: it may be reversed (`EE < SS`); callers decide (see module docstring).
    """
    spans = parse_frame_index_spans(text)
    return spans[0] if spans else None


# What real models also write: one-digit indices after "from" / "between" ("from 5 to 37"). Read only when the
# two-digit pattern finds nothing, and only after a preposition, so that "2 to 3 people" is not taken for a span.
_SPAN_AFTER_PREPOSITION = re.compile(r"\b(?:from|between)\s+(\d{1,2})\s+(?:to|and)\s+(\d{1,2})\b", re.IGNORECASE)


def read_frame_span(text: str) -> tuple[int, int] | None:
    """The span an answer names, read tolerantly (the corrected protocol): `parse_frame_span`, else the first
    "from S to E" / "between S and E" with one- or two-digit indices; `None` if there is neither."""
    span = parse_frame_span(text)
    if span is not None:
        return span
    match = _SPAN_AFTER_PREPOSITION.search(text)
    return None if match is None else (int(match.group(1)), int(match.group(2)))


def _usable_span(start_frame: int, end_frame: int, num_frames: int) -> bool:
    return start_frame <= end_frame and 0 <= start_frame < num_frames and 0 <= end_frame < num_frames


def parse_grounding_answer(text: str, duration: float, num_frames: int = DEFAULT_NUM_FRAMES) -> Interval | None:
    """The interval (seconds) a grounding answer names, or `None` if it names no valid one.

    The span is read by `read_frame_span` ("from 5 to 37" included). `None` covers: no frame span in the text, a
    reversed span, and indices outside `[0, N - 1]`; the grounding metric scores all of them IoU 0.
    """
    span = read_frame_span(text)
    if span is None:
        return None
    if not _usable_span(*span, num_frames):
        return None
    return frame_index_span_to_seconds(*span, duration, num_frames, end="after_frame")


@dataclass(frozen=True)
class CaptionEvent:
    """One dense-captioning event: a sentence and the seconds it covers."""

    sentence: str
    start: float
    end: float

    def to_json(self) -> dict:
        """The ActivityNet prediction form `{"sentence", "timestamp": [start, end]}`."""
        return {"sentence": self.sentence, "timestamp": [self.start, self.end]}


# A chunk of free text ends at a line break, a semicolon or a sentence end (". ").
_CHUNK_SPLIT = re.compile(r"\n+|;|(?<=[.!?])\s+")
_SPAN_WITH_PREPOSITION = re.compile(r"(?:\b(?:from|between)\s+)?" + TIME_SPAN_PATTERN.pattern, re.IGNORECASE)


def parse_dense_captions(text: str, duration: float, num_frames: int = DEFAULT_NUM_FRAMES) -> list[CaptionEvent]:
    """Events of a dense-captioning answer, in the order written; an answer with no readable event gives `[]`.

    Two layouts are read:
    1. VTimeLLM's JSON list: `[{"event": "...", "timestamps": "from SS to EE"}, ...]` (the first `[...]` in the text,
       across lines; spans read by `read_frame_span`, so "from 5 to 37" too);
    2. free text where each line / sentence / `;`-separated chunk holds one frame span, e.g.
       "From 00 to 12, a man walks in. 13 to 40: he sits down." The caption is the chunk without the span
       (and without a leading "from"/"between") and without surrounding punctuation.
    Events whose span is reversed or out of range, or whose caption is empty, are dropped (they cannot be scored).
    """
    events = _parse_vtimellm_json(text, duration, num_frames)
    if events is not None:
        return events
    events = []
    for chunk in _CHUNK_SPLIT.split(text):
        match = _SPAN_WITH_PREPOSITION.search(chunk)
        if match is None:
            continue
        caption = (chunk[: match.start()] + " " + chunk[match.end() :]).strip(" \t,:;.-")
        caption = " ".join(caption.split())
        event = _make_event(caption, int(match.group(1)), int(match.group(3)), duration, num_frames)
        if event is not None:
            events.append(event)
    return events


def _parse_vtimellm_json(text: str, duration: float, num_frames: int) -> list[CaptionEvent] | None:
    """Events of a VTimeLLM JSON-list answer, or `None` if the text holds no such list."""
    match = re.search(r"\[.*\]", text, flags=re.DOTALL)
    if match is None:
        return None
    try:
        items = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        return None
    events = []
    for item in items:
        span = read_frame_span(str(item.get("timestamps", "")))
        caption = str(item.get("event", "")).strip()
        if span is not None:
            event = _make_event(caption, span[0], span[1], duration, num_frames)
            if event is not None:
                events.append(event)
    return events


def _make_event(
    caption: str, start_frame: int, end_frame: int, duration: float, num_frames: int
) -> CaptionEvent | None:
    if not caption or not _usable_span(start_frame, end_frame, num_frames):
        return None
    start, end = frame_index_span_to_seconds(start_frame, end_frame, duration, num_frames, end="after_frame")
    return CaptionEvent(caption, start, end)
