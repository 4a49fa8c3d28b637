"""Each quirk of VTimeLLM's evaluation code under protocol="reference", and our behaviour under "corrected".

Expected numbers are worked by hand from the reference code (github huangb23/VTimeLLM: `vtimellm/eval/eval.py`,
`metric.py`, `dvc_eval/SODA/`), as each comment shows.
"""

from __future__ import annotations

import json

import pytest

from pite.eval.dense_captioning import dense_captioning_scores
from pite.eval.grounding import grounding_scores, grounding_text_scores
from pite.eval.intervals import CaptionEvent
from pite.eval.protocols import (
    check_protocol,
    merge_similar_sentences,
    vtimellm_caption_items,
    vtimellm_dense_captions,
    vtimellm_grounding_span,
    vtimellm_iou,
)
from pite.eval.runner import read_dense_captions
from pite.eval.soda import soda_c_video


def exact(pairs):
    return [float(h == r) for h, r in pairs]


def test_unknown_protocol_is_refused():
    with pytest.raises(ValueError, match="unknown protocol 'paper'.*reference, corrected"):
        check_protocol("paper")
    with pytest.raises(ValueError, match="unknown protocol"):
        grounding_scores([(0, 1)], [(0, 1)], protocol="paper")


# --- grounding (eval.py: iou, metric.py: grounding_metrics) ---


def test_grounding_iou_is_rounded_to_two_decimals():
    # IoU 2.966 / 10 = 0.2966: VTimeLLM rounds it to 0.3, which meets R@0.3; unrounded it misses
    reference = grounding_scores([(0.0, 2.966)], [(0.0, 10.0)], protocol="reference")
    assert reference["R@0.3"] == 100.0 and reference["mIoU"] == pytest.approx(30.0)
    corrected = grounding_scores([(0.0, 2.966)], [(0.0, 10.0)], protocol="corrected")
    assert corrected["R@0.3"] == 0.0 and corrected["mIoU"] == pytest.approx(29.66)
    assert vtimellm_iou((0.0, 0.2966), (0.0, 1.0)) == 0.3 and vtimellm_iou((0.0, 0.294), (0.0, 1.0)) == 0.29


def test_grounding_text_end_convention():
    # "from 20 to 39" of a 100 s video: VTimeLLM reads [0.20, 0.39] of the video (end not advanced by a frame);
    # against [20, 40] s: IoU 0.19 / 0.2 = 0.95. Corrected: [20, 40] s, IoU 1.
    assert vtimellm_grounding_span("It is from 20 to 39.") == (0.2, 0.39)
    reference = grounding_text_scores(["It is from 20 to 39."], [(20.0, 40.0)], [100.0])
    assert reference["mIoU"] == pytest.approx(95.0) and reference["protocol"] == "reference"
    corrected = grounding_text_scores(["It is from 20 to 39."], [(20.0, 40.0)], [100.0], protocol="corrected")
    assert corrected["mIoU"] == pytest.approx(100.0)


def test_grounding_text_reversed_and_unparsable_answers_score_zero_under_both():
    for protocol in ("reference", "corrected"):
        scores = grounding_text_scores(
            ["from 40 to 20", "no idea", "at 12"], [(20.0, 40.0)] * 3, [100.0] * 3, protocol=protocol
        )
        assert scores["mIoU"] == 0.0 and scores["num_invalid"] == 3


def test_one_digit_grounding_span():
    # VTimeLLM's regex needs two digits: "from 5 to 37" names nothing (IoU 0). Corrected reads it after "from":
    # [5, 38] s against [20, 40]: 18 / 35
    reference = grounding_text_scores(["from 5 to 37"], [(20.0, 40.0)], [100.0])
    corrected = grounding_text_scores(["from 5 to 37"], [(20.0, 40.0)], [100.0], protocol="corrected")
    assert reference["mIoU"] == 0.0 and corrected["mIoU"] == pytest.approx(100 * 18 / 35)
    # without a preposition a one-digit pair is not taken for a span
    assert grounding_text_scores(["2 to 3 people"], [(20.0, 40.0)], [100.0], protocol="corrected")["num_invalid"] == 1


# --- dense captioning answers (metric.py: captioning_metrics, merge_similar_sentences) ---


def test_merge_similar_sentences():
    long_a, long_b = "a" * 60, "a" * 59 + "b"  # SequenceMatcher ratio 2 * 59 / 120 = 0.983 > 0.98
    items = [
        {"sentence": long_a, "timestamp": [0, 10]},
        {"sentence": long_b, "timestamp": [11, 20]},  # similar, starts 1 frame after: merged -> [0, 20]
        {"sentence": long_a, "timestamp": [19, 30]},  # similar, starts 1 frame before the end: merged -> [0, 30]
        {"sentence": long_a, "timestamp": [32, 40]},  # gap of 2 frames: kept apart
        {"sentence": "a" * 58 + "bb", "timestamp": [40, 50]},  # touching, ratio 2 * 58 / 120 = 0.967: kept apart
    ]
    assert merge_similar_sentences(items) == [
        {"sentence": long_a, "timestamp": [0, 30]},
        {"sentence": long_a, "timestamp": [32, 40]},
        {"sentence": "a" * 58 + "bb", "timestamp": [40, 50]},
    ]
    assert merge_similar_sentences([]) == []


def test_vtimellm_parser_quirks():
    one_line = json.dumps([{"event": "a", "timestamps": "from 5 to 37"}, {"event": "", "timestamps": "from 60 to 20"}])
    # by position: "from 5 to 37"[5:7] = "5 ", [-2:] = "37"; the empty caption and the reversed span are kept
    assert vtimellm_caption_items("Sure:\n" + one_line) == [
        {"sentence": "a", "timestamp": [5, 37]},
        {"sentence": "", "timestamp": [60, 20]},
    ]
    # a list over several lines is not found (the regex has no DOTALL)
    assert vtimellm_caption_items('[{"event": "a", "timestamps": "from 00 to 10"},\n{"event": "b"}]') == []
    # reading stops at the first item without "timestamps": the items after it are lost too
    stops = json.dumps(
        [{"event": "a", "timestamps": "from 00 to 10"}, {"event": "b"}, {"event": "c", "timestamps": "from 20 to 30"}]
    )
    assert vtimellm_caption_items(stops) == [{"sentence": "a", "timestamp": [0, 10]}]
    assert vtimellm_caption_items('[{"event": "a", "timestamps": "from 00 to 10"}, "text"]') == [
        {"sentence": "a", "timestamp": [0, 10]}
    ]
    assert vtimellm_caption_items("[not json]") == [] and vtimellm_caption_items("no list") == []


def test_reference_and_corrected_reading_of_one_answer():
    answer = json.dumps(
        [
            {"event": "a man walks", "timestamps": "from 00 to 09"},
            {"event": "a man walks", "timestamps": "from 10 to 19"},  # merged with the first under reference
            {
                "event": "he sits",
                "timestamps": "from 5 to 37",
            },  # read by position under reference, by "from" corrected
            {"event": "", "timestamps": "from 40 to 49"},  # empty caption: kept under reference
            {"event": "he leaves", "timestamps": "from 60 to 50"},  # reversed: kept under reference
        ]
    )
    # duration 50 s: s * 50 / 100 and (e + 1) * 50 / 100
    assert vtimellm_dense_captions(answer, 50.0) == [
        {"sentence": "a man walks", "timestamp": [0.0, 10.0]},
        {"sentence": "he sits", "timestamp": [2.5, 19.0]},
        {"sentence": "", "timestamp": [20.0, 25.0]},
        {"sentence": "he leaves", "timestamp": [30.0, 25.5]},
    ]
    assert read_dense_captions(answer, 50.0, protocol="reference") == vtimellm_dense_captions(answer, 50.0)
    assert read_dense_captions(answer, 50.0, protocol="corrected") == [
        {"sentence": "a man walks", "timestamp": [0.0, 5.0]},
        {"sentence": "a man walks", "timestamp": [5.0, 10.0]},
        {"sentence": "he sits", "timestamp": [2.5, 19.0]},
    ]


def test_kept_reversed_and_empty_predictions_lower_precision(meteor):
    references = {"v": {"duration": 50.0, "timestamps": [[0, 10]], "sentences": ["a man walks"]}}
    answer = json.dumps(
        [
            {"event": "a man walks", "timestamps": "from 00 to 19"},
            {"event": "", "timestamps": "from 40 to 49"},
            {"event": "he leaves", "timestamps": "from 60 to 50"},
        ]
    )
    for protocol, precision in (("reference", 100 / 3), ("corrected", 100.0)):
        predictions = {"v": read_dense_captions(answer, 50.0, protocol=protocol)}
        scores = dense_captioning_scores(predictions, references, meteor=meteor, protocol=protocol)
        # one exact event; the reference also counts the empty and the reversed one: precision 1 / 3
        assert scores["Precision"] == pytest.approx(precision) and scores["Recall"] == pytest.approx(100.0)


# --- SODA (dvc_eval/SODA/soda.py, dataset.py, utils.py) ---


def test_soda_meteor_direction():
    calls = []

    def recording(pairs):
        calls.extend(pairs)
        return exact(pairs)

    ground_truth, predicted = [CaptionEvent("the truth", 0, 10)], [CaptionEvent("a guess", 0, 10)]
    soda_c_video(predicted, ground_truth, recording, protocol="reference")
    soda_c_video(predicted, ground_truth, recording, protocol="corrected")
    # (hypothesis, reference): SODA.calc_score_matrix calls compute_score(res, gt), i.e. gts=res: the ground truth is
    # scored as the hypothesis against the prediction
    assert calls == [("the truth", "a guess"), ("a guess", "the truth")]


def test_soda_meteor_direction_changes_the_number(meteor):
    truth, guess = "a man walks into the room", "a man walks"
    ground_truth, predicted = [CaptionEvent(truth, 0, 10)], [CaptionEvent(guess, 0, 10)]

    def scorer(pairs):
        return meteor.segment_scores([(h, [r]) for h, r in pairs])

    forward, backward = scorer([(guess, truth)])[0], scorer([(truth, guess)])[0]
    assert forward != pytest.approx(backward)  # METEOR weighs recall 9:1: the direction matters
    # one pair, IoU 10 / (10 + 1e-8) under reference (utils.iou), exactly 1 corrected: F = P = R = IoU * METEOR
    assert soda_c_video(predicted, ground_truth, scorer, "reference")[2] == pytest.approx(backward)
    assert soda_c_video(predicted, ground_truth, scorer, "corrected")[2] == pytest.approx(forward)


def test_soda_story_order_by_start_only():
    # two ground-truth events with the same start, written long first: VTimeLLM's stable sort by start keeps
    # ("a" [0, 10], "b" [0, 5]); the predictions, written short first, keep ("b", "a"): the matches cross, only one
    # counts: total 1, P = R = 1/2, F = 1/2. Sorted by (start, end) both orders agree: total 2, F = 1.
    ground_truth = [CaptionEvent("a", 0, 10), CaptionEvent("b", 0, 5)]
    predicted = [CaptionEvent("b", 0, 5), CaptionEvent("a", 0, 10)]
    assert soda_c_video(predicted, ground_truth, exact, "reference")[2] == pytest.approx(0.5)
    assert soda_c_video(predicted, ground_truth, exact, "corrected")[2] == pytest.approx(1.0)


def test_reference_soda_reads_every_prediction_beyond_max_proposals(meteor):
    # densevid_eval keeps the first max_proposals predictions; VTimeLLM's SODA code reads them all
    references = {"v": {"duration": 20.0, "timestamps": [[0, 10], [10, 20]], "sentences": ["a man walks", "he sits"]}}
    predictions = {
        "v": [{"sentence": "a man walks", "timestamp": [0, 10]}, {"sentence": "he sits", "timestamp": [10, 20]}]
    }
    reference = dense_captioning_scores(predictions, references, meteor=meteor, max_proposals=1, protocol="reference")
    corrected = dense_captioning_scores(predictions, references, meteor=meteor, max_proposals=1, protocol="corrected")
    assert reference["Recall"] == corrected["Recall"] == pytest.approx(50.0)  # densevid: one prediction kept
    assert reference["SODA_c"] == pytest.approx(100.0)  # both events matched (IoU 1 - 1e-9, METEOR 1)
    assert corrected["SODA_c"] == pytest.approx(100 * 2 / 3)  # P = 1, R = 1/2
