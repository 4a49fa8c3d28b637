"""Skipped samples: recorded with their reason in the predictions file, retried by a rerun, never counted as done."""

import json

import pytest

from pite.eval.datasets import EvalDataset, EvalRecord
from pite.eval.predictions import PredictionStore
from pite.eval.runner import SkippedSample, generate_predictions


def dataset_of(*video_ids: str, missing: tuple[str, ...] = ()) -> EvalDataset:
    records = [EvalRecord(f"q{i}", "qa", video_id, query="what?", answer="x") for i, video_id in enumerate(video_ids)]
    return EvalDataset("tiny", records, list(missing))


def test_store_keeps_skips_on_disk_and_an_output_clears_them(tmp_path):
    path = tmp_path / "p.json"
    store = PredictionStore(path, {"task": "qa"})
    store.skip("a", "video not found")
    store.add("b", "an answer")
    store.flush()
    reopened = PredictionStore(path, {"task": "qa"})
    assert reopened.skipped() == {"a": "video not found"} and not reopened.has("a") and reopened.has("b")
    with pytest.raises(ValueError, match="'b' already has an output"):
        reopened.skip("b", "unreadable")
    reopened.add("a", "found it after all")
    reopened.flush()
    assert json.loads(path.read_text())["skipped"] == {}

    path.write_text(json.dumps({"meta": {}, "predictions": {}, "skipped": {"a": 3}}))
    with pytest.raises(ValueError, match="'skipped' must map sample ids to reasons"):
        PredictionStore(path)


def test_generate_fn_skips_are_recorded_and_retried(tmp_path):
    dataset = dataset_of("v0", "v1", "v2", missing=("v2",))
    store = PredictionStore(tmp_path / "p.json", {"task": "qa"})
    summary = generate_predictions(
        dataset,
        lambda records: [SkippedSample("unreadable") if r.video_id == "v1" else "yes" for r in records],
        store,
        batch_size=2,
        progress=False,
    )
    assert (summary.generated, summary.skipped_samples) == (1, ["q2", "q1"])
    assert summary.skip_reasons == {"q2": "video 'v2' not found in the videos folder", "q1": "unreadable"}
    on_disk = json.loads((tmp_path / "p.json").read_text())
    assert on_disk["predictions"] == {"q0": {"output": "yes"}} and set(on_disk["skipped"]) == {"q1", "q2"}

    asked = []
    again = generate_predictions(
        dataset,
        lambda records: asked.extend(r.sample_id for r in records) or ["fixed"] * len(records),
        PredictionStore(tmp_path / "p.json", {"task": "qa"}),
        progress=False,
    )
    assert asked == ["q1"] and again.already_done == 1 and again.skipped_samples == ["q2"]
    assert json.loads((tmp_path / "p.json").read_text())["skipped"] == {
        "q2": "video 'v2' not found in the videos folder"
    }

    # an output made before its video went missing still counts
    later = generate_predictions(
        dataset_of("v0", "v1", missing=("v0",)),
        lambda records: pytest.fail("asked again"),
        PredictionStore(tmp_path / "p.json", {"task": "qa"}),
        progress=False,
    )
    assert later.already_done == 2 and later.skipped_samples == []
