"""The two scoring protocols, and VTimeLLM's own readers of model answers (the `reference` protocol).

Every metric takes `protocol`:
- `"reference"` (the default): the numbers VTimeLLM's evaluation code computes (github huangb23/VTimeLLM,
  `vtimellm/eval/eval.py`, `metric.py`, `dvc_eval/`), quirks included: this is how the PiTe paper's grounding and
  dense-captioning tables were made, so these are the numbers to compare with them;
- `"corrected"`: where we believe the reference is wrong, the better way (each difference is listed in eval/README.md
  with the reference file and function it departs from).

This module holds what the reference protocol reads out of answer *text*; the metric formulas are in `grounding.py`,
`dense_captioning.py` and `soda.py`.

Time conversion of the reference (the conversions themselves are `pite.processing.time_pite`'s, the one place for
time in text: `end="frame"` for grounding, `end="after_frame"` for dense captioning):
- grounding (`eval.py: iou`): the first match of `(\\d{2}) (to|and) (\\d{2})` gives frame indices `s, e`; the predicted
  span is `[s / 100, e / 100]` as a fraction of the video (the end is *not* `e + 1`), compared with the ground truth
  `[start / duration, end / duration]`; the IoU is rounded to 2 decimals (`round(iou, 2)`) before the thresholds and
  the mean;
- dense captioning (`metric.py: captioning_metrics`): the span of an event is read by fixed positions of its
  `"timestamps"` string (`int(t[5:7])`, `int(t[-2:])`: "from 05 to 37" and "from 5 to 37" both give 5 and 37), similar
  consecutive events are merged (`merge_similar_sentences`, on frame indices), then converted to seconds as
  `[s * duration / 100, (e + 1) * duration / 100]`.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence

from pite.processing.time_pite import TIME_SPAN_PATTERN, frame_index_span_to_seconds

PROTOCOLS = ("reference", "corrected")
DEFAULT_PROTOCOL = "reference"
REFERENCE_NUM_FRAMES = 100

_VTIMELLM_JSON_LIST = re.compile(r"\[.*\]")  # no DOTALL: a list spread over several lines is not found, as there


def check_protocol(protocol: str) -> str:
    """`protocol` if it is one of `PROTOCOLS`, else a `ValueError` naming the choices."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: choose one of {', '.join(PROTOCOLS)}")
    return protocol


def vtimellm_iou(prediction: Sequence[float], reference: Sequence[float]) -> float:
    """VTimeLLM's grounding IoU (`vtimellm/eval/eval.py: iou`) of two spans in any one unit, rounded to 2 decimals.

    `max(0, min(ends) - max(starts)) / (max(ends) - min(starts))`; a reversed prediction overlaps nothing (its
    intersection is negative, hence 0). Where the reference would divide by zero (both spans the same instant) this
    returns 0.
    """
    (pred_start, pred_end), (ref_start, ref_end) = prediction, reference
    intersection = max(0.0, min(pred_end, ref_end) - max(pred_start, ref_start))
    union = max(pred_end, ref_end) - min(pred_start, ref_start)
    if intersection == 0.0 or union <= 0.0:
        return 0.0
    return round(intersection / union, 2)


def vtimellm_grounding_span(answer: str, num_frames: int = REFERENCE_NUM_FRAMES) -> tuple[float, float] | None:
    """The span a grounding answer names as VTimeLLM reads it (`eval.py: iou`): fractions `(s / 100, e / 100)`.

    The first `SS to EE` / `SS and EE` anywhere in the text (unanchored: "100 to 200" reads as 00 to 20); `None`
    when there is none. The end index is *not* advanced by one frame, and a reversed span is kept as written.
    """
    match = TIME_SPAN_PATTERN.search(answer)
    if match is None:
        return None
    # fractions of the video: seconds of a video lasting 1
    return frame_index_span_to_seconds(int(match.group(1)), int(match.group(3)), 1.0, num_frames, end="frame")


def vtimellm_caption_items(answer: str) -> list[dict]:
    """Events of a dense-captioning answer as VTimeLLM's `metric.py: captioning_metrics` reads them.

    Returns `[{"sentence": event, "timestamp": [s, e]}]` with frame indices, in the order written. Exactly as there:
    the text must hold `[...]` on one line (the first `[` to the last `]` of that line); it must parse as JSON; each
    item's span is read by position, `int(timestamps[5:7])` and `int(timestamps[-2:])`; reversed spans and empty
    events are kept. At the first item that cannot be read (not an object, no "timestamps", no "event", positions
    that are not numbers) reading stops: the items before it are kept, it and all after it are dropped.
    """
    match = _VTIMELLM_JSON_LIST.search(answer)
    if match is None:
        return []
    try:
        items = json.loads(match.group(0))
    except ValueError:
        return []
    events: list[dict] = []
    for item in items:
        try:
            timestamps = item["timestamps"]
            span = [int(timestamps[5:7]), int(timestamps[-2:])]
            sentence = item["event"]
        except (KeyError, TypeError, ValueError, IndexError):
            break
        if not isinstance(sentence, str):  # the reference fails later (removing non-ASCII characters) on these
            break
        events.append({"sentence": sentence, "timestamp": span})
    return events


def merge_similar_sentences(events: Sequence[dict]) -> list[dict]:
    """VTimeLLM's `metric.py: merge_similar_sentences`: merge runs of near-identical consecutive events that touch.

    Walking in the order written, an event joins the current one when `difflib.SequenceMatcher` gives their
    sentences a ratio above 0.98 *and* it starts within one frame of the current event's end
    (`-1 <= next_start - current_end <= 1`, frame indices); the merged span runs from the current start to the
    joining event's end and keeps the first sentence.
    """
    if not events:
        return []
    merged = []
    sentence, span = events[0]["sentence"], list(events[0]["timestamp"])
    for event in events[1:]:
        similar = difflib.SequenceMatcher(None, sentence, event["sentence"]).ratio() > 0.98
        if similar and -1 <= event["timestamp"][0] - span[1] <= 1:
            span = [span[0], event["timestamp"][1]]
        else:
            merged.append({"sentence": sentence, "timestamp": span})
            sentence, span = event["sentence"], list(event["timestamp"])
    merged.append({"sentence": sentence, "timestamp": span})
    return merged


def vtimellm_dense_captions(answer: str, duration: float, num_frames: int = REFERENCE_NUM_FRAMES) -> list[dict]:
    """A dense-captioning answer in ActivityNet prediction form, read as VTimeLLM's `captioning_metrics` reads it.

    `vtimellm_caption_items`, then `merge_similar_sentences`, then seconds `[s * duration / 100,
    (e + 1) * duration / 100]`. Returns `[{"sentence", "timestamp": [start, end]}]` (possibly reversed, possibly with
    empty sentences: the reference scores those as they are).
    """
    merged = merge_similar_sentences(vtimellm_caption_items(answer))
    events = []
    for event in merged:
        start, end = event["timestamp"]
        events.append(
            {
                "sentence": event["sentence"],
                "timestamp": list(frame_index_span_to_seconds(start, end, duration, num_frames, end="after_frame")),
            }
        )
    return events
