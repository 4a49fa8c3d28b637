"""SODA_c: the ordered matching and the F-measure on cases solvable by hand (exact-match caption scorer)."""

import numpy as np
import pytest

from pite.eval.intervals import CaptionEvent
from pite.eval.soda import ordered_matching, soda_c_scores, soda_c_video


def exact(pairs):
    """Caption score 1 for identical sentences, else 0 (METEOR 1.5 gives exactly these on such pairs)."""
    return [float(h == r) for h, r in pairs]


def test_ordered_matching_keeps_story_order():
    # An unordered assignment would take both 1s (sum 2); crossing pairs are not allowed, so the best is 1.
    total, matches = ordered_matching(np.array([[0.0, 1.0], [1.0, 0.0]]))
    assert total == 1.0 and len(matches) == 1
    total, matches = ordered_matching(np.array([[0.9, 0.8], [0.1, 0.7]]))
    assert total == pytest.approx(1.6) and matches == [(0, 0), (1, 1)]
    # skipping is allowed: row 1 matches nothing
    total, matches = ordered_matching(np.array([[0.5, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.4]]))
    assert total == pytest.approx(0.9) and matches == [(0, 0), (2, 2)]
    assert ordered_matching(np.zeros((0, 3)))[0] == 0.0


def test_soda_video_hand_worked():
    ground_truth = [CaptionEvent("a", 0, 10), CaptionEvent("b", 20, 40)]
    # "a" at IoU 0.8 (twice: a duplicate), "b" at IoU 0.8, listed out of order (sorted by time before matching)
    predicted = [CaptionEvent("b", 20, 36), CaptionEvent("a", 0, 8), CaptionEvent("a", 0, 8)]
    precision, recall, f_measure = soda_c_video(predicted, ground_truth, exact)
    # best ordered matching: a-a (0.8) and b-b (0.8): total 1.6; P = 1.6 / 3, R = 1.6 / 2
    assert precision == pytest.approx(1.6 / 3) and recall == pytest.approx(0.8)
    assert f_measure == pytest.approx(2 * (1.6 / 3) * 0.8 / (1.6 / 3 + 0.8))  # 0.64
    assert f_measure == pytest.approx(0.64)


def test_soda_needs_time_and_words_to_agree():
    ground_truth = [CaptionEvent("a", 0, 10)]
    assert soda_c_video([CaptionEvent("z", 0, 10)], ground_truth, exact) == (0.0, 0.0, 0.0)  # right time, wrong words
    assert soda_c_video([CaptionEvent("a", 20, 30)], ground_truth, exact) == (0.0, 0.0, 0.0)  # right words, no overlap
    assert soda_c_video([CaptionEvent("a", 30, 20)], ground_truth, exact) == (
        0.0,
        0.0,
        0.0,
    )  # reversed: overlaps nothing
    assert soda_c_video([], ground_truth, exact) == (0.0, 0.0, 0.0)


def test_soda_scores_average_videos_and_take_best_reference_set():
    first = {"v": [CaptionEvent("a", 0, 10), CaptionEvent("b", 10, 20)], "w": [CaptionEvent("c", 0, 5)]}
    second = {"v": [CaptionEvent("a", 0, 10)]}
    predictions = {"v": [CaptionEvent("a", 0, 10)], "w": [CaptionEvent("x", 0, 5)]}
    result = soda_c_scores(predictions, [first, second], exact, protocol="corrected")
    # v: against first P = 1, R = 1/2 -> F = 2/3; against second F = 1 -> best 1. w: 0.
    assert result["per_video"] == {"v": pytest.approx(100.0), "w": 0.0}
    assert result["SODA_c"] == pytest.approx(50.0) and result["protocol"] == "corrected"
    # reference (VTimeLLM's eval_soda): each set alone, then the mean over sets:
    # first: (v 2/3 + w 0) / 2 = 1/3; second: v 1 -> (1/3 + 1) / 2 = 2/3
    reference = soda_c_scores(predictions, [first, second], exact, protocol="reference")
    assert reference["SODA_c"] == pytest.approx(100 * 2 / 3) and reference["protocol"] == "reference"
    with pytest.raises(ValueError, match="'u'"):
        soda_c_scores({"u": []}, [first], exact)


def test_caption_scorer_called_only_for_overlapping_pairs():
    calls = []

    def recording(pairs):
        calls.extend(pairs)
        return exact(pairs)

    soda_c_video([CaptionEvent("a", 0, 10), CaptionEvent("b", 50, 60)], [CaptionEvent("a", 0, 10)], recording)
    assert calls == [("a", "a")]
