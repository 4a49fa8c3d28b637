"""The metrics as `evaluate` modules: `evaluate.load(<local path>)` offline, and by import, give the same numbers."""

import os

import evaluate
import numpy as np
import pytest

from pite.eval.dense_captioning import dense_captioning_scores
from pite.eval.grounding import grounding_scores
from pite.eval.hf_metrics import METRIC_NAMES, TemporalGrounding, metric_script_path
from pite.eval.trajectory import trajectory_scores


def test_offline():
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # set by tests/conftest.py: any Hub access would fail


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_every_script_loads_offline(name):
    module = evaluate.load(metric_script_path(name))
    assert isinstance(module, evaluate.Metric)


def test_temporal_grounding_module():
    predictions, references = [[0.0, 5.0], [], [0.0, 3.0]], [[0.0, 10.0], [1.0, 2.0], [0.0, 10.0]]
    loaded = evaluate.load(metric_script_path("temporal_grounding"))
    expected = grounding_scores([(0.0, 5.0), None, (0.0, 3.0)], [tuple(r) for r in references])
    assert loaded.compute(predictions=predictions, references=references) == expected
    assert expected["mIoU"] == pytest.approx(100 * 0.8 / 3)
    by_import = TemporalGrounding()
    assert by_import.compute(predictions=predictions, references=references) == expected
    answers = ["from 00 to 49", "no idea", "00 to 29"]
    expected = grounding_scores([(0.0, 5.0), None, (0.0, 3.0)], [tuple(r) for r in references], protocol="corrected")
    text = evaluate.load(metric_script_path("temporal_grounding"), "text-corrected")
    scores = text.compute(predictions=answers, references=references, durations=[10, 10, 10])
    assert scores == expected  # "00 to 49" over 10 s -> [0, 5]; "00 to 29" -> [0, 3]
    # the default protocol is VTimeLLM's: "00 to 49" is the fraction [0, 0.49] (no + 1 on the end), IoU 0.49;
    # "00 to 29" -> 0.29, which misses R@0.3: R@0.3 = 1/3, R@0.5 = 0, mIoU = (49 + 0 + 29) / 3 = 26
    reference = evaluate.load(metric_script_path("temporal_grounding"), "text")
    scores = reference.compute(predictions=answers, references=references, durations=[10, 10, 10])
    assert scores["R@0.3"] == pytest.approx(100 / 3) and scores["R@0.5"] == 0.0
    assert scores["mIoU"] == pytest.approx(26.0) and scores["protocol"] == "reference"
    overridden = reference.compute(
        predictions=answers, references=references, durations=[10] * 3, protocol="corrected"
    )
    assert overridden == expected
    with pytest.raises(ValueError, match="durations"):
        text.compute(predictions=["00 to 01"], references=[[0, 1]])


def test_dense_video_captioning_module(meteor):
    predictions = [
        [{"sentence": "a man walks into the room", "timestamp": [0.0, 8.0]}],
        [],
    ]
    references = [
        {"timestamps": [[0.0, 10.0]], "sentences": ["a man walks into the room"]},
        {"timestamps": [[0.0, 5.0]], "sentences": ["a dog"]},
    ]
    loaded = evaluate.load(metric_script_path("dense_video_captioning"))
    scores = loaded.compute(predictions=predictions, references=references, video_ids=["a", "b"], meteor=meteor)
    expected = dense_captioning_scores(
        dict(zip("ab", predictions)),
        {v: {"duration": 10.0, **r} for v, r in zip("ab", references)},
        meteor=meteor,
    )
    assert scores == expected
    # video a: METEOR 1 at 0.3 / 0.5 / 0.7, 0 at 0.9 (IoU 0.8); video b predicts nothing: 0
    assert scores["METEOR"] == pytest.approx(100 * 0.75 / 2)
    # SODA: a: IoU 0.8 x METEOR 1 -> P = R = 0.8 -> F = 0.8; b: 0
    assert scores["SODA_c"] == pytest.approx(40.0)
    assert scores["protocol"] == "reference"
    corrected = evaluate.load(metric_script_path("dense_video_captioning"), "corrected")
    scores = corrected.compute(predictions=predictions, references=references, video_ids=["a", "b"], meteor=meteor)
    assert scores["protocol"] == "corrected" and scores["SODA_c"] == pytest.approx(40.0)  # exact IoU 0.8: the same
    with pytest.raises(ValueError, match="unknown config 'paper'"):
        evaluate.load(metric_script_path("dense_video_captioning"), "paper").compute(
            predictions=predictions, references=references
        )


def test_trajectory_accuracy_module():
    predictions = [[[0.56, 0.5], [0.2, 0.33]], [[0.56, 0.5]]]
    references = [[[0.5, 0.5], [-1.0, -1.0]], [[0.5, 0.5]]]
    loaded = evaluate.load(metric_script_path("trajectory_accuracy"))
    scores = loaded.compute(predictions=predictions, references=references, width=[16, 1], height=[9, 1])
    expected = trajectory_scores(
        np.array([[0.56, 0.5], [0.2, 0.33], [0.56, 0.5]]),
        np.array([[0.5, 0.5], [-1, -1], [0.5, 0.5]]),
        width=[16, 16, 1],
        height=[9, 9, 1],
    )
    assert scores == expected and scores["PCK@0.05"] == 50.0 and scores["num_points"] == 2


def test_video_qa_judge_module(chat_server, tmp_path):
    from pite.eval.judge_backends import OpenAIChatJudge

    loaded = evaluate.load(metric_script_path("video_qa_judge"))
    judge = OpenAIChatJudge(chat_server.base_url, "judge-model")
    scores = loaded.compute(
        predictions=["running", "blue"],
        references=["running", "red"],
        questions=["doing?", "color?"],
        judge=judge,
        cache=str(tmp_path / "cache.sqlite"),
    )
    assert scores["accuracy"] == 50.0 and scores["score"] == 3.0
    assert scores["judge_model"] == "judge-model" and scores["temperature"] == 0.0
    with pytest.raises(ValueError, match="judge="):
        loaded.compute(predictions=["a"], references=["a"])
