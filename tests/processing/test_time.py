"""Time in text (VTimeLLM convention): seconds <-> two-digit frame indices, and parsing answers."""

from __future__ import annotations

import pytest

from pite.processing import (
    TIME_SPAN_PATTERN,
    format_frame_index,
    format_time_span,
    frame_index_span_to_seconds,
    parse_frame_index_spans,
    parse_time_spans,
    seconds_to_frame_index,
)


def test_seconds_to_index_follows_vtimellm():
    assert seconds_to_frame_index(0.0, 20.0) == 0
    assert seconds_to_frame_index(3.0, 20.0) == 15
    assert seconds_to_frame_index(20.0, 20.0) == 99  # min(round(100), 99)
    assert seconds_to_frame_index(0.25, 1.0, num_frames=10) == 2  # round(2.5) -> 2, Python's rounding
    assert format_frame_index(7) == "07" and format_frame_index(42) == "42"
    assert format_time_span(3.0, 9.0, 20.0) == "from 15 to 45"
    assert format_time_span(0.0, 52.18, 52.18) == "from 00 to 99"


def test_round_trip_recovers_the_span_within_half_a_slot():
    """ "frame" (the default) inverts the training rule; "after_frame" reads the end one slot later."""
    duration = 73.4
    slot = duration / 100
    for start, end in [(0.0, 5.0), (12.3, 40.1), (60.0, 73.4), (33.3, 33.3)]:
        ((s, e),) = parse_frame_index_spans(format_time_span(start, end, duration))
        back_start, back_end = frame_index_span_to_seconds(s, e, duration)
        assert abs(back_start - start) <= slot / 2 + 1e-9
        # the last index is clamped to 99, so an end at the video's end reads back one slot early
        assert abs(back_end - min(end, duration - slot)) <= slot / 2 + 1e-9
        after_start, after_end = frame_index_span_to_seconds(s, e, duration, end="after_frame")
        assert after_start == back_start and after_end == pytest.approx(back_end + slot)


def test_frame_convention_scores_as_vtimellms_grounding_evaluation():
    """VTimeLLM's `eval.py: iou` compares s / 100 and e / 100 with the ground truth as fractions of the video:
    "from 10 to 30" against (2 s, 6 s) of a 20 s video is IoU 1.0 there, and so here with `end="frame"`."""
    start, end = parse_time_spans("It happens from 10 to 30.", duration=20.0)[0]
    assert (start, end) == pytest.approx((2.0, 6.0))
    ((start, end),) = parse_time_spans("It happens from 10 to 30.", duration=20.0, end="after_frame")
    assert (start, end) == pytest.approx((2.0, 6.2))
    with pytest.raises(ValueError, match="end must be one of"):
        frame_index_span_to_seconds(1, 2, 10.0, end="inclusive")


def test_parsing_answers():
    answer = "The man runs from 05 to 17. Later, between 40 and 62, he stops; 3 to 4 is ignored."
    assert parse_frame_index_spans(answer) == [(5, 17), (40, 62)]
    assert parse_time_spans(answer, duration=50.0) == [pytest.approx((2.5, 8.5)), pytest.approx((20.0, 31.0))]
    assert parse_time_spans(answer, duration=50.0, end="after_frame") == [
        pytest.approx((2.5, 9.0)),
        pytest.approx((20.0, 31.5)),
    ]
    assert parse_time_spans("no time here", duration=10.0) == []
    assert TIME_SPAN_PATTERN.pattern == r"(\d{2}) (to|and) (\d{2})"
    # the model's own words are converted, not clipped or reordered, so a metric can score them as written
    assert parse_time_spans("from 80 to 20", duration=10.0, num_frames=50) == [pytest.approx((16.0, 4.0))]


def test_bad_time_inputs():
    with pytest.raises(ValueError, match=r"time 25.0 s lies outside the video \[0, 20.0\] s"):
        seconds_to_frame_index(25.0, 20.0)
    assert seconds_to_frame_index(25.0, 20.0, clip=True) == 99
    assert format_time_span(-0.5, 21.0, 20.0, clip=True) == "from 00 to 99"
    with pytest.raises(ValueError, match="duration must be > 0"):
        seconds_to_frame_index(1.0, 0.0)
    with pytest.raises(ValueError, match="num_frames <= 100, got 128"):
        format_time_span(1.0, 2.0, 10.0, num_frames=128)
    with pytest.raises(ValueError, match="ends before it starts"):
        format_time_span(5.0, 2.0, 10.0)
    with pytest.raises(ValueError, match=r"frame index 100 outside \[0, 100\)"):
        format_frame_index(100)
