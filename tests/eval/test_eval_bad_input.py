"""Bad evaluation input is refused with a message naming the query, video or file and the value, never scored."""

from __future__ import annotations

import json

import evaluate
import pytest

from pite.cli.main import main
from pite.eval.datasets import read_activitynet_captions
from pite.eval.dense_captioning import dense_captioning_scores
from pite.eval.grounding import grounding_scores, grounding_text_scores
from pite.eval.hf_metrics import metric_script_path
from pite.eval.predictions import PredictionStore
from pite.eval.runner import score_grounding


@pytest.mark.parametrize("protocol", ["reference", "corrected"])
@pytest.mark.parametrize("reference", [[-5.0, -1.0], [-3.0, 4.0], [10.0, 2.0]])
def test_negative_or_reversed_reference_interval_is_refused(reference, protocol):
    with pytest.raises(ValueError, match=r"ground truth #0 \(query 'v_x#0'\).*" + str(reference[0])):
        grounding_scores([(0.0, 5.0)], [reference], protocol=protocol, query_ids=["v_x#0"])
    with pytest.raises(ValueError, match=r"ground truth #0 \(query 'v_x#0'\)"):
        grounding_text_scores(["from 00 to 10"], [reference], [20.0], protocol=protocol, query_ids=["v_x#0"])


@pytest.mark.parametrize("protocol", ["reference", "corrected"])
def test_temporal_grounding_module_refuses_negative_reference(protocol):
    module = evaluate.load(metric_script_path("temporal_grounding"), protocol)
    for reference in ([-5.0, -1.0], [10.0, 2.0]):
        with pytest.raises(ValueError, match=r"ground truth #1 \(query 'v#1'\).*" + str(reference[0])):
            module.compute(predictions=[[0.0, 5.0]] * 2, references=[[0.0, 5.0], reference], query_ids=["v#0", "v#1"])


def test_dense_captioning_reference_video_without_events_is_refused():
    predictions = {"v_empty": [{"sentence": "a man walks", "timestamp": [0, 5]}]}
    with pytest.raises(ValueError, match="reference video 'v_empty' has no events"):
        dense_captioning_scores(predictions, {"v_empty": {"duration": 10, "timestamps": [], "sentences": []}})


def test_grounding_on_references_without_queries(tmp_path, capsys):
    empty = tmp_path / "val_empty.json"
    empty.write_text(json.dumps({"v_a": {"duration": 10.0, "timestamps": [], "sentences": []}}))
    with pytest.raises(ValueError, match="val_empty.json holds no grounding queries"):
        score_grounding(read_activitynet_captions(empty, task="grounding"), PredictionStore(tmp_path / "p.json"))
    (tmp_path / "model").mkdir()
    (tmp_path / "videos").mkdir()
    code = main(
        [
            "eval",
            "grounding",
            "--model",
            str(tmp_path / "model"),
            "--data",
            str(empty),
            "--videos",
            str(tmp_path / "videos"),
            "--output",
            str(tmp_path / "out.json"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "the references file" in err and str(empty) in err and "holds no queries" in err
    assert "no predictions" not in err and not (tmp_path / "out.json").exists()
