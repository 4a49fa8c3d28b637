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


def test_round_trip_recovers_the_span_within_one_slot():
    duration = 73.4
    for start, end in [(0.0, 5.0), (12.3, 40.1), (60.0, 73.4), (33.3, 33.3)]:
        (s, e), = parse_frame_index_spans(format_time_span(start, end, duration))
        back_start, back_end = frame_index_span_to_seconds(s, e, duration)
        slot = duration / 100
        assert abs(back_start - start) <= slot / 2 + 1e-9
        assert back_end - slot <= end + slot / 2 + 1e-9 and back_end >= end - slot / 2 - 1e-9
        assert back_end > back_start


def test_parsing_answers():
    answer = "The man runs from 05 to 17. Later, between 40 and 62, he stops; 3 to 4 is ignored."
    assert parse_frame_index_spans(answer) == [(5, 17), (40, 62)]
    assert parse_time_spans(answer, duration=50.0) == [pytest.approx((2.5, 9.0)), pytest.approx((20.0, 31.5))]
    assert parse_time_spans("no time here", duration=10.0) == []
    assert TIME_SPAN_PATTERN.pattern == r"(\d{2}) (to|and) (\d{2})"
    # the model's own words are converted, not clipped or reordered, so a metric can score them as written
    assert parse_time_spans("from 80 to 20", duration=10.0, num_frames=50) == [pytest.approx((16.0, 4.2))]


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
