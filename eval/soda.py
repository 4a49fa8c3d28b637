"""SODA_c (Fujita et al., ECCV 2020, "SODA: Story Oriented Dense Video Captioning Evaluation Framework").

Written from the paper (its reference code carries a restrictive licence and was not used). Our reading:

1. Story order. The ground-truth events `G = (g_1 .. g_|G|)` and the predicted events `P = (p_1 .. p_|P|)` of a video
   are each sorted by (start, end) time.
2. Pair score. `C[i, j] = IoU(g_i, p_j) * METEOR(p_j's sentence, g_i's sentence)`: a pair earns credit only if it
   overlaps in time *and* says the same thing. The IoU is the exact temporal IoU (`pite.eval.intervals`), and the
   METEOR of a pair is computed on that pair alone. Pairs that do not overlap score 0 without calling METEOR.
3. Optimal story matching. The best one-to-one matching that keeps the temporal order of both sequences (i < i' implies
   j < j' for matched pairs), found by dynamic programming as in the longest-common-subsequence problem:
   `S[i, j] = max(S[i-1, j], S[i, j-1], S[i-1, j-1] + C[i, j])`, `S[0, .] = S[., 0] = 0`. Unmatched events earn
   nothing.
4. F-measure. With `total = S[|G|, |P|]`: precision = total / |P| (redundant or extra captions lower it),
   recall = total / |G|, SODA_c = 2PR / (P + R), and 0 when a video has no prediction or total = 0.
5. Aggregation. A video scored against several reference sets (ActivityNet's val_1 and val_2 annotate the same videos
   twice) keeps its best F over the sets that contain it (as densevid_eval keeps the best recall). SODA_c of a
   dataset is the mean over videos, reported x100.

Protocols (`pite.eval.protocols`). The above is `"corrected"`. `"reference"` gives the numbers of the SODA code that
VTimeLLM runs (`vtimellm/eval/dvc_eval/SODA/soda.py`, `dataset.py`, `utils.py`, `eval_soda.py`), which differs in:
- caption score direction: `SODA.calc_score_matrix` calls `compute_score(res, gt)` where pycocoevalcap's signature is
  `(gts, res)`: METEOR is computed with the *ground-truth* sentence as hypothesis and the predicted one as reference;
- story order: `ANETCaptions.load_prediction` / `load_ground_truth` sort events by start time only (a stable sort:
  events with the same start keep their written order), not by (start, end);
- tIoU: `utils.iou`, `intersection / (union + 1e-8)` with `union = min(hull, len_a + len_b)` (so an exact match
  scores just under 1);
- several reference sets: `eval_soda` scores the predictions against each set alone (mean F over the videos of that
  set) and averages those numbers over the sets, where we keep each video's best set.
The DP itself (`chased_dp_assignment`) has the same optimum as `ordered_matching`.

Usage:
    >>> from pite.eval.intervals import CaptionEvent
    >>> exact = lambda pairs: [float(h == r) for h, r in pairs]
    >>> gt = {"v": [CaptionEvent("a", 0, 10), CaptionEvent("b", 10, 20)]}
    >>> round(soda_c_scores({"v": [CaptionEvent("a", 0, 10)]}, [gt], exact)["SODA_c"], 4)  # P = 1, R = 1/2
    66.6667
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from pite.eval.intervals import CaptionEvent, temporal_iou
from pite.eval.protocols import DEFAULT_PROTOCOL, check_protocol

# (hypothesis sentence, reference sentence) pairs -> one similarity per pair, in order.
PairScorer = Callable[[Sequence[tuple[str, str]]], Sequence[float]]


def ordered_matching(pair_scores: np.ndarray) -> tuple[float, list[tuple[int, int]]]:
    """Best order-preserving one-to-one matching of rows to columns of a (G, P) score matrix.

    Returns:
        (the summed score of the matched pairs, the matched `(row, column)` pairs in increasing order).
        Ties are broken towards skipping a row, then a column, so the matching is deterministic.
    """
    num_rows, num_cols = pair_scores.shape
    best = np.zeros((num_rows + 1, num_cols + 1))
    for i in range(1, num_rows + 1):
        for j in range(1, num_cols + 1):
            best[i, j] = max(best[i - 1, j], best[i, j - 1], best[i - 1, j - 1] + pair_scores[i - 1, j - 1])
    matches = []
    i, j = num_rows, num_cols
    while i > 0 and j > 0:
        if best[i, j] == best[i - 1, j]:
            i -= 1
        elif best[i, j] == best[i, j - 1]:
            j -= 1
        else:
            matches.append((i - 1, j - 1))
            i, j = i - 1, j - 1
    return float(best[num_rows, num_cols]), matches[::-1]


def _story_order(events: Sequence[CaptionEvent], protocol: str) -> list[CaptionEvent]:
    if protocol == "reference":
        return sorted(events, key=lambda event: event.start)  # stable: equal starts keep their written order
    return sorted(events, key=lambda event: (event.start, event.end))


def _soda_iou(ground_truth: CaptionEvent, prediction: CaptionEvent, protocol: str) -> float:
    """A reversed prediction overlaps nothing: it scores 0 but still counts in |P|."""
    if prediction.start > prediction.end:
        return 0.0
    if protocol == "corrected":
        return temporal_iou((ground_truth.start, ground_truth.end), (prediction.start, prediction.end))
    intersection = max(0.0, min(prediction.end, ground_truth.end) - max(prediction.start, ground_truth.start))
    if intersection == 0.0:
        return 0.0
    union = min(
        max(prediction.end, ground_truth.end) - min(prediction.start, ground_truth.start),
        (prediction.end - prediction.start) + (ground_truth.end - ground_truth.start),
    )
    return intersection / (union + 1e-8)


def soda_c_video(
    predicted: Sequence[CaptionEvent],
    reference: Sequence[CaptionEvent],
    pair_scorer: PairScorer,
    protocol: str = DEFAULT_PROTOCOL,
) -> tuple[float, float, float]:
    """(precision, recall, F) of one video against one reference set, as fractions in [0, 1]."""
    check_protocol(protocol)
    if not predicted or not reference:
        return 0.0, 0.0, 0.0
    ground_truth, predictions = _story_order(reference, protocol), _story_order(predicted, protocol)
    ious = np.array([[_soda_iou(g, p, protocol) for p in predictions] for g in ground_truth])
    overlapping = list(zip(*np.nonzero(ious)))
    if protocol == "reference":  # the ground truth is METEOR's hypothesis there (see the module docstring)
        pairs = [(ground_truth[i].sentence, predictions[j].sentence) for i, j in overlapping]
    else:
        pairs = [(predictions[j].sentence, ground_truth[i].sentence) for i, j in overlapping]
    captions = pair_scorer(pairs)
    pair_scores = np.zeros_like(ious)
    for (i, j), caption_score in zip(overlapping, captions):
        pair_scores[i, j] = ious[i, j] * caption_score
    total, _ = ordered_matching(pair_scores)
    precision, recall = total / len(predictions), total / len(ground_truth)
    if total == 0.0:
        return precision, recall, 0.0
    return precision, recall, 2 * precision * recall / (precision + recall)


def soda_c_scores(
    predictions: Mapping[str, Sequence[CaptionEvent]],
    reference_sets: Sequence[Mapping[str, Sequence[CaptionEvent]]],
    pair_scorer: PairScorer,
    protocol: str = DEFAULT_PROTOCOL,
) -> dict[str, object]:
    """SODA_c over the videos of `predictions` (each must appear in at least one reference set), x100.

    Returns:
        `{"SODA_c": x100, "per_video": {video_id: F x100}, "protocol": protocol}`; per video the best F over its
        reference sets. SODA_c is the mean of `per_video` (`"corrected"`), or, `"reference"`, the mean over reference
        sets of the mean F of that set's videos (equal when there is one set).
    """
    check_protocol(protocol)
    if not predictions:
        raise ValueError("no videos to score")
    per_set: list[dict[str, float]] = [{} for _ in reference_sets]
    for video_id, predicted in predictions.items():
        if not any(video_id in refs for refs in reference_sets):
            raise ValueError(f"video {video_id!r} has predictions but no reference events")
        for index, refs in enumerate(reference_sets):
            if video_id in refs:
                per_set[index][video_id] = 100.0 * soda_c_video(predicted, refs[video_id], pair_scorer, protocol)[2]
    per_video = {v: max(scores[v] for scores in per_set if v in scores) for v in predictions}
    if protocol == "reference":
        set_means = [sum(scores.values()) / len(scores) for scores in per_set if scores]
        soda = sum(set_means) / len(set_means)
    else:
        soda = sum(per_video.values()) / len(per_video)
    return {"SODA_c": soda, "per_video": per_video, "protocol": protocol}
