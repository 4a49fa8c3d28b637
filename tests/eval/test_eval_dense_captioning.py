"""Dense captioning (densevid_eval protocol + SODA_c) on a hand-worked example, Java-less fallback, bad input.

Hand-working METEOR and CIDEr: METEOR 1.5 scores an identical hypothesis exactly 1 and one sharing no word with its
reference exactly 0 (also when aggregated over a video's pairs if they are all identical or all unmatched);
pycocoevalcap's CIDEr gives an identical pair 10 when the video has several pairs, an unmatched pair 0, and every pair
0 when the video has a single pair (idf = log(1) = 0).
"""

import gc
import warnings

import pytest

from pite.eval.caption_scorers import JavaNotFoundError, MeteorScorer, ptb_tokenize, python_tokenize
from pite.eval.dense_captioning import (
    DUMMY_REFERENCE,
    _caption_pairs,
    _precision_recall,
    dense_captioning_scores,
    densevid_tiou,
    read_predicted_events,
    read_reference_events,
)
from pite.eval.intervals import CaptionEvent

WALK, SIT = "A man walks into the room.", "He sits down on a red chair."
REFERENCES = {
    "v1": {"duration": 100.0, "timestamps": [[0, 10], [20, 40]], "sentences": [WALK, SIT]},
    "v2": {"duration": 50.0, "timestamps": [[0, 50]], "sentences": ["A dog runs around the yard."]},
    "v3": {"duration": 60.0, "timestamps": [[0, 10]], "sentences": ["A dog runs."]},
}
PREDICTIONS = {
    # IoU 0.8 each; the first is duplicated
    "v1": [
        {"sentence": WALK, "timestamp": [0, 8]},
        {"sentence": WALK, "timestamp": [0, 8]},
        {"sentence": SIT, "timestamp": [20, 36]},
    ],
    "v2": [{"sentence": "A dog runs around the yard.", "timestamp": [0, 50]}],  # one pair, IoU 1
    "v3": [{"sentence": "A cat sleeps on the sofa.", "timestamp": [50, 60]}],  # overlaps nothing
}


def test_hand_worked_scores(meteor):
    scores = dense_captioning_scores(PREDICTIONS, REFERENCES, meteor=meteor)
    assert scores["tokenizer"] == "ptb" and scores["unavailable"] == {} and scores["num_videos"] == 3
    low, high = (0.3, 0.5, 0.7), 0.9
    for tiou in low:
        # v1: every pair identical (METEOR 1, CIDEr 10 x3 / 3); v2: METEOR 1, CIDEr 0 (single pair); v3: unmatched
        assert scores["per_tiou"][tiou]["METEOR"] == pytest.approx(100 * 2 / 3)
        assert scores["per_tiou"][tiou]["CIDEr"] == pytest.approx(100 * 10 / 3)
        # P/R: v1 3/3 and 2/2 (0.8 > tIoU), v2 1 and 1, v3 0 and 0
        assert scores["per_tiou"][tiou]["Precision"] == pytest.approx(100 * 2 / 3)
        assert scores["per_tiou"][tiou]["Recall"] == pytest.approx(100 * 2 / 3)
    # at 0.9 v1's predictions (IoU 0.8) all pair with the dummy: only v2 scores
    assert scores["per_tiou"][high]["METEOR"] == pytest.approx(100 / 3)
    assert scores["per_tiou"][high]["CIDEr"] == pytest.approx(0.0)
    assert scores["per_tiou"][high]["Precision"] == pytest.approx(100 / 3)
    assert scores["METEOR"] == pytest.approx((3 * 200 / 3 + 100 / 3) / 4)
    assert scores["CIDEr"] == pytest.approx(3 * 1000 / 3 / 4)
    assert scores["Precision"] == scores["Recall"] == pytest.approx((3 * 200 / 3 + 100 / 3) / 4)
    assert scores["F1"] == pytest.approx((3 * 200 / 3 + 100 / 3) / 4)
    # SODA_c: v1 matches walk-walk and sit-sit (0.8 each): P = 1.6/3, R = 0.8, F = 0.64; v2 F = 1; v3 0
    assert scores["SODA_c"] == pytest.approx(100 * (0.64 + 1.0 + 0.0) / 3)


def test_pairs_duplicates_every_overlap_and_dummy():
    references = [[CaptionEvent("a", 0, 10), CaptionEvent("b", 0, 12)]]
    predicted = [CaptionEvent("p", 0, 10), CaptionEvent("p", 0, 10), CaptionEvent("q", 50, 60)]
    pairs = _caption_pairs(predicted, references, 0.5)
    # each prediction pairs with *every* GT overlapping it at >= 0.5 (IoU 1 and 10/12), duplicates included
    assert pairs == [("p", "a"), ("p", "b"), ("p", "a"), ("p", "b"), ("q", DUMMY_REFERENCE)]


def test_strictness_and_densevid_epsilon():
    references = [[CaptionEvent("a", 0, 10)]]
    predicted = [CaptionEvent("p", 0, 5)]  # IoU exactly 0.5 by hand; densevid's 1e-8 makes it 0.49999999...
    assert densevid_tiou((0, 5), (0, 10)) < 0.5
    assert _caption_pairs(predicted, references, 0.5) == [("p", DUMMY_REFERENCE)]
    assert _precision_recall(predicted, references, 0.5) == (0.0, 0.0)
    assert _precision_recall(predicted, references, 0.3) == (1.0, 1.0)
    # strict ">" for precision / recall: IoU 0.6 covers at 0.5, not at 0.6 - tiny
    assert _precision_recall([CaptionEvent("p", 0, 6)], references, 0.59) == (1.0, 1.0)


def test_max_proposals_truncates_predictions():
    events = read_predicted_events(
        {"v": [{"sentence": str(i), "timestamp": [i, i + 1]} for i in range(5)]}, max_proposals=2
    )
    assert [e.sentence for e in events["v"]] == ["0", "1"]


def test_without_java_cider_and_detection_still_computed(no_java):
    with pytest.warns(UserWarning, match="java"):
        scores = dense_captioning_scores(PREDICTIONS, REFERENCES)
    assert scores["METEOR"] is None and scores["SODA_c"] is None
    assert "java" in scores["unavailable"]["METEOR"] and "java" in scores["unavailable"]["SODA_c"]
    assert scores["tokenizer"] == "python"
    assert scores["CIDEr"] == pytest.approx(3 * 1000 / 3 / 4)  # the Python tokenizer agrees on these captions
    assert scores["Precision"] == pytest.approx((3 * 200 / 3 + 100 / 3) / 4)
    with pytest.raises(JavaNotFoundError, match="java"):
        MeteorScorer()
    with pytest.raises(JavaNotFoundError, match="PTB"):
        ptb_tokenize(["a"])


def test_python_tokenizer_matches_ptb_on_captions(requires_java):
    sentences = [
        "A woman is seen speaking to the camera (smiling).",
        "She then begins brushing the dog's hair, while the camera zooms in.",
        "Two men can't play catch; they're throwing a frisbee!",
        "",
    ]
    assert python_tokenize(sentences) == ptb_tokenize(sentences)


def test_meteor_process_is_closed(requires_java):
    scorer = MeteorScorer()
    process = scorer._process
    scorer.close()
    assert process.poll() is not None and scorer.closed
    scorer.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        scorer.segment_scores([("a", ["a"])])
    forgotten = MeteorScorer()
    process = forgotten._process
    del forgotten
    gc.collect()
    assert process.poll() is not None


@pytest.mark.parametrize(
    "references, message",
    [
        ({"v": {"timestamps": [[0, 1]], "sentences": []}}, r"references\[0\]\['v'\]: 1 timestamps but 0 sentences"),
        ({"v": {"timestamps": [[5, 1]], "sentences": ["a"]}}, r"\['timestamps'\]\[0\]: reversed"),
        ({"v": {"timestamps": [[0, "x"]], "sentences": ["a"]}}, r"\['timestamps'\]\[0\]"),
        ({"v": {"sentences": ["a"]}}, "must both be lists"),
    ],
)
def test_bad_references(references, message):
    with pytest.raises(ValueError, match=message):
        read_reference_events(references, "references[0]")


def test_bad_predictions():
    with pytest.raises(ValueError, match=r"predictions\['v'\]\[0\]"):
        read_predicted_events({"v": [{"timestamp": [0, 1]}]})
    with pytest.raises(ValueError, match=r"predictions\['v'\]\[0\]\['timestamp'\]"):
        read_predicted_events({"v": [{"sentence": "a", "timestamp": [0]}]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="in no reference file: \\['zz'\\]"):
            dense_captioning_scores({"zz": []}, REFERENCES)
