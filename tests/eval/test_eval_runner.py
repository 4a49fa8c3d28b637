"""Runner scaffolding end to end on tiny files in the published formats: generate, resume, score, tabulate."""

import json

import pytest

from pite.eval.datasets import read_activitynet_captions, read_charades_sta, read_msrvtt_qa
from pite.eval.judge import JudgmentCache
from pite.eval.predictions import PredictionStore
from pite.eval.prompts import DENSE_CAPTIONING_QUESTION, grounding_question, task_question
from pite.eval.runner import generate_predictions, score_dense_captioning, score_grounding, score_qa
from pite.eval.tables import activitynet_table, qa_table

WALK, SIT = "A man walks into the room.", "He sits down on a red chair."


@pytest.fixture
def charades(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "AAAAA.mp4").write_bytes(b"")
    (tmp_path / "sta.txt").write_text(
        "AAAAA 10 20##a person opens the door.\nAAAAA 0 50##a person sits\nBBBBB 1 2##gone\n", encoding="utf-8"
    )
    (tmp_path / "charades.csv").write_text("id,length\nAAAAA,100\nBBBBB,30\n", encoding="utf-8")
    return read_charades_sta(tmp_path / "sta.txt", tmp_path / "charades.csv", videos)


def oracle_grounding(records):
    # the first query is answered exactly (frames 10-19 of 100 over 100 s = [10, 20] s), the second not at all
    return ["It happens from 10 to 19." if r.sample_id.endswith("#0") else "I do not know." for r in records]


def test_grounding_end_to_end_and_table(charades, tmp_path):
    store = PredictionStore(tmp_path / "out" / "grounding.json", meta={"task": "grounding", "model": "tiny"})
    summary = generate_predictions(charades, oracle_grounding, store, batch_size=1, progress=False)
    assert summary.generated == 2 and summary.missing_videos == ["BBBBB"] and summary.skipped_samples == ["BBBBB#0"]
    on_disk = json.loads((tmp_path / "out" / "grounding.json").read_text())
    assert on_disk["meta"] == {"task": "grounding", "model": "tiny"}
    assert on_disk["predictions"]["AAAAA#0"] == {"output": "It happens from 10 to 19."}
    scores = score_grounding(charades, store, protocol="corrected")
    assert (scores["R@0.3"], scores["R@0.5"], scores["R@0.7"], scores["mIoU"]) == (50.0, 50.0, 50.0, 50.0)
    assert scores["num_unanswered"] == 1
    assert activitynet_table({"tiny": {"grounding": scores}}) == (
        "| Model | R@0.3 | R@0.5 | R@0.7 | mIoU | SODA_c | CIDEr | METEOR |\n"
        "|---|---|---|---|---|---|---|---|\n"
        "| tiny | 50.0 | 50.0 | 50.0 | 50.0 | - | - | - |\n\n"
        "Protocol: corrected (pite's fixes of the reference scripts, see eval/README.md)"
    )
    # VTimeLLM's reading (the default): "10 to 19" is [0.10, 0.19] of the video against [0.1, 0.2]: IoU 0.9
    reference = score_grounding(charades, store)
    assert (reference["R@0.7"], reference["mIoU"], reference["protocol"]) == (50.0, pytest.approx(45.0), "reference")
    assert activitynet_table({"tiny": {"grounding": reference}}).endswith(
        "Protocol: reference (VTimeLLM's evaluation code / Video-ChatGPT's judge script, quirks included)"
    )
    assert not [p.name for p in (tmp_path / "out").iterdir() if p.name != "grounding.json"]  # no temp files left


def test_interrupted_generation_resumes_without_losing_outputs(charades, tmp_path):
    path = tmp_path / "grounding.json"
    calls = []

    def crashing(records):
        calls.append([r.sample_id for r in records])
        if len(calls) == 2:
            raise RuntimeError("out of memory")
        return oracle_grounding(records)

    with pytest.raises(RuntimeError, match="out of memory"):
        generate_predictions(
            charades, crashing, PredictionStore(path, {"task": "grounding"}), batch_size=1, progress=False
        )
    assert list(json.loads(path.read_text())["predictions"]) == ["AAAAA#0"]  # the first batch was saved

    calls.clear()
    resumed = PredictionStore(path, {"task": "grounding"})
    summary = generate_predictions(charades, oracle_grounding_recording(calls), resumed, batch_size=4, progress=False)
    assert calls == [["AAAAA#1"]] and summary.already_done == 1 and summary.generated == 1
    assert score_grounding(charades, PredictionStore(path), protocol="corrected")["mIoU"] == 50.0

    with pytest.raises(ValueError, match=r"different settings \(\['model'\]\)"):
        PredictionStore(path, {"task": "grounding", "model": "other"})


def oracle_grounding_recording(calls):
    def generate(records):
        calls.append([r.sample_id for r in records])
        return oracle_grounding(records)

    return generate


def test_bad_generate_fn_output_keeps_earlier_batches(charades, tmp_path):
    path = tmp_path / "p.json"
    outputs = iter([["from 10 to 19"], ["a", "b"]])
    with pytest.raises(ValueError, match="length 2 for a batch of 1"):
        generate_predictions(
            charades, lambda records: next(outputs), PredictionStore(path), batch_size=1, progress=False
        )
    assert list(json.loads(path.read_text())["predictions"]) == ["AAAAA#0"]
    with pytest.raises(TypeError, match="not str"):
        generate_predictions(charades, lambda records: [None] * len(records), PredictionStore(path), progress=False)
    path.write_text("{broken", encoding="utf-8")
    with pytest.raises(ValueError, match="not a valid predictions file"):
        PredictionStore(path)


def test_dense_captioning_end_to_end(tmp_path, meteor):
    (tmp_path / "val_2.json").write_text(
        json.dumps({"v_a": {"duration": 100.0, "timestamps": [[0, 10], [20, 40]], "sentences": [WALK, SIT]}})
    )
    dataset = read_activitynet_captions(tmp_path / "val_2.json")

    def vtimellm_style(records):
        events = [{"event": WALK, "timestamps": "from 00 to 09"}, {"event": SIT, "timestamps": "from 20 to 39"}]
        return [json.dumps(events) for _ in records]

    store = PredictionStore(tmp_path / "dvc.json", {"task": "dense_captioning"})
    generate_predictions(dataset, vtimellm_style, store, progress=False)
    scores = score_dense_captioning(dataset, store, meteor=meteor)
    # both events exact (IoU 1 up to densevid's 1e-8) and identical: every number is perfect; CIDEr of two
    # identical pairs is 10 (x100)
    assert scores["SODA_c"] == pytest.approx(100.0) and scores["METEOR"] == pytest.approx(100.0)
    assert scores["CIDEr"] == pytest.approx(1000.0) and scores["Precision"] == scores["Recall"] == 100.0
    assert "| tiny | - | - | - | - | 100.0 | 1000.0 | 100.0 |\n\nProtocol: reference" in activitynet_table(
        {"tiny": {"dense_captioning": scores}}
    )


class ExactMatchJudge:
    """A stand-in judge: yes/5 when the prediction equals the answer, else no/0."""

    model_name, temperature = "exact-match", 0.0

    def __init__(self):
        self.calls = 0

    def complete(self, messages):
        self.calls += 1
        user = messages[1]["content"]
        answer, prediction = (user.split(key)[1].split("\n")[0] for key in ("Correct Answer: ", "Predicted Answer: "))
        return "{'pred': 'yes', 'score': 5}" if answer == prediction else "{'pred': 'no', 'score': 0}"


def test_qa_end_to_end_and_table(tmp_path):
    (tmp_path / "test_qa.json").write_text(
        json.dumps(
            [
                {"answer": "man", "id": 1, "question": "who talks?", "video_id": 7010},
                {"answer": "dog", "id": 2, "question": "what animal?", "video_id": 7011},
            ]
        )
    )
    dataset = read_msrvtt_qa(tmp_path / "test_qa.json")
    store = PredictionStore(tmp_path / "qa.json", {"task": "qa"})
    generate_predictions(dataset, lambda records: ["man" for _ in records], store, progress=False)
    judge, cache = ExactMatchJudge(), JudgmentCache(tmp_path / "judge.sqlite")
    result = score_qa(dataset, store, judge, cache)
    assert (result.accuracy, result.score) == (50.0, 2.5)
    assert score_qa(dataset, store, judge, cache).summary() == result.summary() and judge.calls == 2  # cached
    table = qa_table({"tiny": {"MSRVTT-QA": result}})
    assert table == (
        "| Model | MSVD-QA Acc. | MSVD-QA Score | MSRVTT-QA Acc. | MSRVTT-QA Score | ActivityNet-QA Acc. | "
        "ActivityNet-QA Score |\n|---|---|---|---|---|---|---|\n| tiny | - | - | 50.0 | 2.5 | - | - |\n\n"
        "Judge: exact-match (temperature 0.0)\n"
        "Protocol: reference (VTimeLLM's evaluation code / Video-ChatGPT's judge script, quirks included)"
    )


def test_scoring_refuses_wrong_task_or_no_predictions(charades, tmp_path):
    with pytest.raises(ValueError, match="no predictions"):
        score_grounding(charades, PredictionStore(tmp_path / "empty.json"))
    with pytest.raises(ValueError, match="needs 'qa' records"):
        score_qa(charades, PredictionStore(tmp_path / "empty.json"), ExactMatchJudge())


def test_task_questions(charades):
    assert (
        grounding_question("  A person opens the door. ") == "During which frames can we see a person opens the door?"
    )
    assert task_question(charades.records[0]) == "During which frames can we see a person opens the door?"
    assert DENSE_CAPTIONING_QUESTION.startswith("Could you please describe the events in the video in detail?")
