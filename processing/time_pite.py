"""Time in text, VTimeLLM's convention (which PiTe's training and evaluation follow): two-digit indices of the N
sampled frames. This is the one place for the conversion; the training data builders, `post_process_generation`
and the evaluation metrics import it. Each rule below is taken from VTimeLLM's code (github huangb23/VTimeLLM):

- seconds -> index (training targets; `vtimellm/train/dataset.py`, `convert` in `LazySupervisedDataset`):
  `min(round(t / duration * N), N - 1)` with Python's `round` (halves to even), written `str(index).zfill(2)`;
- answers are read with the regex `(\\d{2}) (to|and) (\\d{2})` (`vtimellm/eval/eval.py`, `iou`);
- index span (s, e) -> seconds, two conventions, both VTimeLLM's:
  - `"frame"` (the default): start `s * duration / N`, end `e * duration / N`. This is how VTimeLLM's grounding
    evaluation reads an answer (`eval.py: iou`, which compares `s / 100` and `e / 100` with the ground truth as
    fractions of the duration), and it is the inverse of the training rule above: a span written from (t0, t1)
    reads back within half a frame slot of (t0, t1). `post_process_generation` uses it.
  - `"after_frame"`: start `s * duration / N`, end `(e + 1) * duration / N`, the end index naming the last frame
    *inside* the span. VTimeLLM's dense-captioning evaluation reads answers this way (`vtimellm/eval/metric.py`,
    `captioning_metrics`).

Two digits hold indices up to 99, so the text form needs N <= 100 (PiTe uses N = 100).

This file is Hub remote code: it imports nothing outside the standard library.
"""

from __future__ import annotations

import re

# VTimeLLM's answer pattern: "from 12 to 45", "between 12 and 45".
TIME_SPAN_PATTERN = re.compile(r"(\d{2}) (to|and) (\d{2})")
MAX_TEXT_FRAMES = 100
# How the end index of a written span turns into seconds (module docstring).
SPAN_END_CONVENTIONS = ("frame", "after_frame")


def _check(duration: float, num_frames: int) -> None:
    if not duration > 0:
        raise ValueError(f"duration must be > 0 seconds, got {duration}")
    if not 1 <= num_frames <= MAX_TEXT_FRAMES:
        raise ValueError(f"two-digit frame indices need 1 <= num_frames <= {MAX_TEXT_FRAMES}, got {num_frames}")


def seconds_to_frame_index(seconds: float, duration: float, num_frames: int = 100, clip: bool = False) -> int:
    """The sampled-frame index (0 .. N-1) that names time `seconds` of a video lasting `duration` seconds.

    Times outside [0, duration] are an error unless `clip=True` (an explicit choice for datasets whose
    annotations overrun the video by annotation noise, e.g. ActivityNet end times past the duration).
    """
    _check(duration, num_frames)
    if clip:
        seconds = min(max(seconds, 0.0), duration)
    elif not 0 <= seconds <= duration:
        raise ValueError(f"time {seconds} s lies outside the video [0, {duration}] s (pass clip=True to clip)")
    return min(round(seconds / duration * num_frames), num_frames - 1)


def format_frame_index(index: int, num_frames: int = 100) -> str:
    """Index -> its two-digit text form ("07")."""
    if not 0 <= index < num_frames:
        raise ValueError(f"frame index {index} outside [0, {num_frames})")
    return str(index).zfill(2)


def format_time_span(start: float, end: float, duration: float, num_frames: int = 100, clip: bool = False) -> str:
    """Seconds (start, end) -> "from SS to EE", e.g. `format_time_span(3.0, 9.0, 20.0)` == "from 15 to 45"."""
    if end < start:
        raise ValueError(f"time span ends before it starts: start={start} s, end={end} s")
    first = seconds_to_frame_index(start, duration, num_frames, clip)
    last = seconds_to_frame_index(end, duration, num_frames, clip)
    return f"from {format_frame_index(first, num_frames)} to {format_frame_index(last, num_frames)}"


def frame_index_span_to_seconds(
    start_index: int, end_index: int, duration: float, num_frames: int = 100, end: str = "frame"
) -> tuple[float, float]:
    """Index span (s, e) -> seconds: `(s * duration / N, e * duration / N)` for `end="frame"` (VTimeLLM's grounding
    evaluation; the inverse of `seconds_to_frame_index`), `(s * duration / N, (e + 1) * duration / N)` for
    `end="after_frame"` (VTimeLLM's dense-captioning evaluation). See the module docstring.

    Indices are not range-checked here: this also converts what a model wrote, and a metric must be able to
    score an out-of-range answer rather than crash.
    """
    _check(duration, num_frames)
    if end not in SPAN_END_CONVENTIONS:
        raise ValueError(f"end must be one of {SPAN_END_CONVENTIONS}, got {end!r}")
    last = end_index + 1 if end == "after_frame" else end_index
    return start_index * duration / num_frames, last * duration / num_frames


def parse_frame_index_spans(text: str) -> list[tuple[int, int]]:
    """All "SS to EE" / "SS and EE" index pairs in `text`, in order of appearance (no clipping, no reordering)."""
    return [(int(match.group(1)), int(match.group(3))) for match in TIME_SPAN_PATTERN.finditer(text)]


def parse_time_spans(
    text: str, duration: float, num_frames: int = 100, end: str = "frame"
) -> list[tuple[float, float]]:
    """All time spans written in `text`, converted to seconds with `frame_index_span_to_seconds(..., end=end)`.

    Returns an empty list when the text holds no span (the grounding metric then scores IoU 0).
    """
    return [frame_index_span_to_seconds(s, e, duration, num_frames, end) for s, e in parse_frame_index_spans(text)]
