"""Temporal grounding metric (VTimeLLM protocol): R@1 at IoU >= 0.3 / 0.5 / 0.7 and mIoU, in percent.

Each query has one predicted interval (the model's single answer, hence "R@1") and one ground-truth interval, both in
seconds. A prediction that is `None` (no parsable span, a reversed span, indices out of range: see
`pite.eval.intervals.parse_grounding_answer`) or a reversed interval scores IoU 0; a reversed or non-finite ground
truth raises a `ValueError` naming its index.

Usage:
    >>> from pite.eval.grounding import grounding_scores
    >>> grounding_scores([(0.0, 5.0), None], [(0.0, 10.0), (3.0, 4.0)])["mIoU"]
    25.0

Differences from VTimeLLM's script, on purpose: VTimeLLM converts the end frame as `e / 100` (we use
`(e + 1) * duration / N`, the DESIGN.md contract) and rounds each IoU to 2 decimals (we do not). A threshold is
met when `IoU >= threshold - 1e-9`, so that float rounding of `s * duration / N` cannot turn an exact tie into a miss.
"""

from __future__ import annotations

from collections.abc import Sequence

from pite.eval.intervals import temporal_iou, validate_interval

DEFAULT_THRESHOLDS = (0.3, 0.5, 0.7)
THRESHOLD_TOLERANCE = 1e-9


def prediction_iou(prediction: Sequence[float] | None, reference: Sequence[float], index: int = 0) -> float:
    """IoU of one predicted interval with its ground truth; 0 for a missing or reversed prediction."""
    reference = validate_interval(reference, f"ground truth #{index}")
    if prediction is None or _is_reversed(prediction):
        return 0.0
    return temporal_iou(validate_interval(prediction, f"prediction #{index}"), reference)


def grounding_scores(
    predictions: Sequence[Sequence[float] | None],
    references: Sequence[Sequence[float]],
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> dict[str, float]:
    """R@1 at each IoU threshold and mIoU, in percent, over aligned predictions and ground truths.

    Args:
        predictions: per query, a `(start, end)` interval in seconds, or `None` when the answer named none.
        references: per query, the ground-truth `(start, end)` in seconds.
        thresholds: IoU thresholds for R@1.

    Returns:
        `{"R@0.3": ..., "R@0.5": ..., "R@0.7": ..., "mIoU": ..., "num_queries": n, "num_invalid": k}` where
        `num_invalid` counts predictions that were `None` or reversed.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} ground truths: they must align")
    if not references:
        raise ValueError("no queries to score")
    ious = [prediction_iou(p, r, i) for i, (p, r) in enumerate(zip(predictions, references))]
    invalid = sum(1 for p in predictions if p is None or _is_reversed(p))
    count = len(ious)
    scores: dict[str, float] = {}
    for threshold in thresholds:
        hits = sum(1 for iou in ious if iou >= threshold - THRESHOLD_TOLERANCE)
        scores[f"R@{threshold:g}"] = 100.0 * hits / count
    scores["mIoU"] = 100.0 * sum(ious) / count
    scores["num_queries"] = count
    scores["num_invalid"] = invalid
    return scores


def _is_reversed(prediction: Sequence[float]) -> bool:
    """Whether a predicted `(start, end)` pair of numbers has `start > end` (a wrong answer, not an error)."""
    if len(prediction) != 2 or not all(isinstance(v, (int, float)) for v in prediction):
        return False
    return prediction[0] > prediction[1]
