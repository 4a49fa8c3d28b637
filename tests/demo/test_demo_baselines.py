"""The demo's grounding baseline that knows only where events tend to lie: one span, chosen on training events."""

import json

import numpy as np
import pytest

from pite.demo.evaluation import constant_span_answer, training_event_fractions
from pite.eval.grounding import grounding_text_scores


def test_the_constant_span_is_the_best_single_span_on_the_events():
    # Every event covers the first half of its video: the best span is [0, 50) of 100 frames, IoU 1.
    events = np.array([[0.0, 0.5]] * 3)
    assert constant_span_answer(events, 100) == "From 00 to 50."
    # Two disjoint events: no span covers both; the best one is either event itself (IoU 1 with it, 0 with the other)
    # or a span across both, and the search must find the highest mean IoU of all 4,950 spans.
    events = np.array([[0.1, 0.3], [0.6, 0.9]])
    answer = constant_span_answer(events, 10)
    scores = {
        (s, e): grounding_text_scores([f"From {s:02d} to {e:02d}."] * 2, [(1, 3), (6, 9)], [10, 10], 10)["mIoU"]
        for s in range(10)
        for e in range(s + 1, 10)
    }
    start, end = (int(x) for x in answer.removeprefix("From ").removesuffix(".").split(" to "))
    assert scores[(start, end)] == max(scores.values())
    with pytest.raises(ValueError, match="no events"):
        constant_span_answer(np.zeros((0, 2)), 100)


def test_training_events_are_read_as_fractions_of_their_videos(tmp_path):
    records = [
        {"duration": 10.0, "events": [{"start": 1.0, "end": 4.0}, {"start": 5.0, "end": 10.0}]},
        {"duration": 4.0, "events": [{"start": 0.0, "end": 2.0}]},
    ]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    np.testing.assert_allclose(training_event_fractions(str(path)), [[0.1, 0.4], [0.5, 1.0], [0.0, 0.5]])
