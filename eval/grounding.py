"""Temporal grounding metric (VTimeLLM protocol): R@1 at IoU >= 0.3 / 0.5 / 0.7 and mIoU, in percent.

Each query has one predicted interval (the model's single answer, hence "R@1") and one ground-truth interval, both in
seconds. A prediction that is `None` (no parsable span, a reversed span, indices out of range: see
`pite.eval.intervals.parse_grounding_answer`) or a reversed interval scores IoU 0; a reversed or non-finite ground
truth raises a `ValueError` naming its index.

Usage:
    >>> from pite.eval.grounding import grounding_scores
    >>> grounding_scores([(0.0, 5.0), None], [(0.0, 10.0), (3.0, 4.0)])["mIoU"]
    25.0

Protocols (`pite.eval.protocols`): `"reference"` (default) is VTimeLLM's `vtimellm/eval/eval.py: iou` and
`metric.py: grounding_metrics`: each IoU is rounded to 2 decimals, a threshold is met when the rounded IoU is
`>= threshold`, and answers given as text are read as fractions `[s / 100, e / 100]` of the video (no `+ 1` on the end
frame). `"corrected"`: unrounded IoUs, a threshold met when `IoU >= threshold - 1e-9` (so that float rounding of
`s * duration / N` cannot turn an exact tie into a miss), and text read as seconds `[s * duration / N,
(e + 1) * duration / N]` (`pite.processing.time_pite`), reversed or out-of-range spans being wrong answers.
"""

from __future__ import annotations

from collections.abc import Sequence

from pite.eval.intervals import DEFAULT_NUM_FRAMES, parse_grounding_answer, temporal_iou, validate_interval
from pite.eval.protocols import DEFAULT_PROTOCOL, check_protocol, vtimellm_grounding_span, vtimellm_iou

DEFAULT_THRESHOLDS = (0.3, 0.5, 0.7)
THRESHOLD_TOLERANCE = 1e-9


def _where(kind: str, index: int, query_ids: Sequence[str] | None) -> str:
    return f"{kind} #{index}" if query_ids is None else f"{kind} #{index} (query {query_ids[index]!r})"


def validate_reference(reference: Sequence[float], what: str) -> tuple[float, float]:
    """A ground-truth interval as floats, or a `ValueError` naming `what` and the value (reversed, negative, not
    two finite numbers): such an interval is a data error, scoring it would give a silently wrong number."""
    start, end = validate_interval(reference, what)
    if start < 0:
        raise ValueError(f"{what}: interval {list(reference)!r} starts before the video (negative time)")
    return start, end


def prediction_iou(
    prediction: Sequence[float] | None,
    reference: Sequence[float],
    index: int = 0,
    protocol: str = DEFAULT_PROTOCOL,
    query_ids: Sequence[str] | None = None,
) -> float:
    """IoU of one predicted interval with its ground truth; 0 for a missing or reversed prediction.

    Under `"reference"` the IoU is rounded to 2 decimals (VTimeLLM's `eval.py: iou`).
    """
    reference = validate_reference(reference, _where("ground truth", index, query_ids))
    if prediction is None or _is_reversed(prediction):
        return 0.0
    prediction = validate_interval(prediction, _where("prediction", index, query_ids))
    if check_protocol(protocol) == "reference":
        return vtimellm_iou(prediction, reference)
    return temporal_iou(prediction, reference)


def grounding_scores(
    predictions: Sequence[Sequence[float] | None],
    references: Sequence[Sequence[float]],
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    protocol: str = DEFAULT_PROTOCOL,
    query_ids: Sequence[str] | None = None,
) -> dict[str, object]:
    """R@1 at each IoU threshold and mIoU, in percent, over aligned predictions and ground truths.

    Args:
        predictions: per query, a `(start, end)` interval in seconds, or `None` when the answer named none.
        references: per query, the ground-truth `(start, end)` in seconds (a reversed or negative one is refused with
            a `ValueError` naming the query and the value).
        thresholds: IoU thresholds for R@1.
        protocol: `"reference"` (IoUs rounded to 2 decimals, thresholds without tolerance) or `"corrected"`.
        query_ids: optional names of the queries, used in error messages.

    Returns:
        `{"R@0.3": ..., "R@0.5": ..., "R@0.7": ..., "mIoU": ..., "num_queries": n, "num_invalid": k,
        "protocol": protocol}` where `num_invalid` counts predictions that were `None` or reversed.
    """
    check_protocol(protocol)
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} ground truths: they must align")
    if not references:
        raise ValueError("no queries to score")
    ious = [prediction_iou(p, r, i, protocol, query_ids) for i, (p, r) in enumerate(zip(predictions, references))]
    invalid = sum(1 for p in predictions if p is None or _is_reversed(p))
    return aggregate_ious(ious, invalid, thresholds, protocol)


def aggregate_ious(
    ious: Sequence[float],
    invalid: int,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    protocol: str = DEFAULT_PROTOCOL,
) -> dict[str, object]:
    """R@1 per threshold and mIoU (percent) of per-query IoUs (`"reference"`: `iou >= t`, as VTimeLLM's
    `metric.py: grounding_metrics`; `"corrected"`: `iou >= t - 1e-9`)."""
    tolerance = THRESHOLD_TOLERANCE if protocol == "corrected" else 0.0
    count = len(ious)
    scores: dict[str, object] = {}
    for threshold in thresholds:
        hits = sum(1 for iou in ious if iou >= threshold - tolerance)
        scores[f"R@{threshold:g}"] = 100.0 * hits / count
    scores["mIoU"] = 100.0 * sum(ious) / count
    scores["num_queries"] = count
    scores["num_invalid"] = invalid
    scores["protocol"] = protocol
    return scores


def grounding_text_scores(
    answers: Sequence[str],
    references: Sequence[Sequence[float]],
    durations: Sequence[float],
    num_frames: int = DEFAULT_NUM_FRAMES,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    protocol: str = DEFAULT_PROTOCOL,
    query_ids: Sequence[str] | None = None,
) -> dict[str, object]:
    """`grounding_scores` of answers as the model wrote them ("... from 12 to 45."), read per `protocol`.

    `"reference"`: VTimeLLM's `eval.py: iou` exactly: the first `SS to EE` span as fractions `[s / N, e / N]`
    against `[start / duration, end / duration]`, the IoU rounded to 2 decimals. `"corrected"`:
    `pite.eval.intervals.parse_grounding_answer` (seconds, end frame inclusive, reversed / out-of-range spans wrong),
    then `grounding_scores`.
    """
    check_protocol(protocol)
    if not len(answers) == len(references) == len(durations):
        raise ValueError(
            f"{len(answers)} answers, {len(references)} ground truths, {len(durations)} durations: they must align"
        )
    if protocol == "corrected":
        intervals = [parse_grounding_answer(a, d, num_frames) for a, d in zip(answers, durations)]
        return grounding_scores(intervals, references, thresholds, protocol, query_ids)
    if not references:
        raise ValueError("no queries to score")
    ious, invalid = reference_text_ious(answers, references, durations, num_frames, query_ids)
    return aggregate_ious(ious, invalid, thresholds, protocol)


def reference_text_ious(
    answers: Sequence[str],
    references: Sequence[Sequence[float]],
    durations: Sequence[float],
    num_frames: int = DEFAULT_NUM_FRAMES,
    query_ids: Sequence[str] | None = None,
) -> tuple[list[float], int]:
    """(per answer the IoU VTimeLLM's `eval.py: iou` computes, the number of answers with no or a reversed span)."""
    ious, invalid = [], 0
    for index, (answer, reference, duration) in enumerate(zip(answers, references, durations)):
        start, end = validate_reference(reference, _where("ground truth", index, query_ids))
        span = vtimellm_grounding_span(answer, num_frames)
        if span is None or span[0] > span[1]:
            invalid += 1
        ious.append(0.0 if span is None else vtimellm_iou(span, (start / duration, end / duration)))
    return ious, invalid


def _is_reversed(prediction: Sequence[float]) -> bool:
    """Whether a predicted `(start, end)` pair of numbers has `start > end` (a wrong answer, not an error)."""
    if len(prediction) != 2 or not all(isinstance(v, (int, float)) for v in prediction):
        return False
    return prediction[0] > prediction[1]
