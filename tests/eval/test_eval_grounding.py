"""Temporal IoU edge cases, answer parsing, and R@1 / mIoU on hand-worked examples."""

import math

import pytest

from pite.eval.grounding import grounding_scores
from pite.eval.intervals import parse_frame_span, parse_grounding_answer, temporal_iou


@pytest.mark.parametrize(
    "first, second, expected",
    [
        ((0, 10), (0, 10), 1.0),  # identical
        ((0, 5), (5, 10), 0.0),  # touching: no shared time
        ((0, 10), (2, 4), 0.2),  # nested: 2 / 10
        ((2, 4), (0, 10), 0.2),  # symmetric
        ((0, 6), (4, 10), 0.2),  # partial: 2 / 10
        ((0, 2), (8, 10), 0.0),  # disjoint
        ((3, 3), (0, 10), 0.0),  # zero-length inside
        ((3, 3), (3, 3), 0.0),  # zero-length with itself: no extent, no overlap
    ],
)
def test_temporal_iou_edge_cases(first, second, expected):
    assert temporal_iou(first, second) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize("bad", [(5, 2), (0, math.nan), (0, math.inf), (1,), "0 5", (True, 3)])
def test_temporal_iou_refuses_malformed_intervals(bad):
    with pytest.raises(ValueError, match="first interval"):
        temporal_iou(bad, (0, 10))


def test_parse_frame_span_reads_the_first_span_as_written():
    assert parse_frame_span("The man jumps from 12 to 45, then from 50 to 60.") == (12, 45)
    assert parse_frame_span("between 03 and 07") == (3, 7)
    assert parse_frame_span("from 45 to 12") == (45, 12)  # reversed: reported as written
    assert parse_frame_span("from 1 to 9") is None  # one digit: not VTimeLLM's format
    assert parse_frame_span("100 to 200") == (0, 20)  # unanchored, exactly like VTimeLLM's regex
    assert parse_frame_span("no time at all") is None


def test_parse_grounding_answer_converts_and_rejects():
    # start = 10 * 50 / 100 = 5 s, end = (19 + 1) * 50 / 100 = 10 s
    assert parse_grounding_answer("It happens from 10 to 19.", 50.0) == (5.0, 10.0)
    assert parse_grounding_answer("12 to 12", 100.0) == (12.0, 13.0)  # one frame, not zero-length
    assert parse_grounding_answer("from 45 to 12", 50.0) is None  # reversed -> wrong answer
    assert parse_grounding_answer("13 to 12", 100.0) is None  # reversed frames even though the seconds would touch
    assert parse_grounding_answer("I cannot tell.", 50.0) is None
    assert parse_grounding_answer("from 40 to 60", 10.0, num_frames=50) is None  # 60 is outside [0, 49]
    assert parse_grounding_answer("from 10 to 19", 10.0, num_frames=50) == (2.0, 4.0)


def test_grounding_scores_hand_worked():
    gt = (0.0, 10.0)
    predictions = [(0.0, 10.0), (0.0, 5.0), (0.0, 3.0), None, (8.0, 2.0)]  # IoU 1, 0.5, 0.3, 0 (none), 0 (reversed)
    scores = grounding_scores(predictions, [gt] * 5)
    assert scores["R@0.3"] == pytest.approx(60.0)
    assert scores["R@0.5"] == pytest.approx(40.0)
    assert scores["R@0.7"] == pytest.approx(20.0)
    assert scores["mIoU"] == pytest.approx(100 * (1 + 0.5 + 0.3) / 5)
    assert scores["num_queries"] == 5 and scores["num_invalid"] == 2


def test_threshold_tie_survives_float_rounding():
    end = 0.7 - 0.4  # 0.29999999999999993: IoU with (0, 1) is a tie with 0.3 up to rounding
    assert end < 0.3
    assert grounding_scores([(0.0, end)], [(0.0, 1.0)])["R@0.3"] == 100.0
    assert grounding_scores([(0.0, 0.29)], [(0.0, 1.0)])["R@0.3"] == 0.0


def test_grounding_scores_bad_input():
    with pytest.raises(ValueError, match="ground truth #1"):
        grounding_scores([(0, 1), (0, 1)], [(0, 2), (5, 1)])
    with pytest.raises(ValueError, match="align"):
        grounding_scores([(0, 1)], [(0, 2), (0, 3)])
    with pytest.raises(ValueError, match="no queries"):
        grounding_scores([], [])
    with pytest.raises(ValueError, match="prediction #0"):
        grounding_scores([(0, math.nan)], [(0, 2)])
