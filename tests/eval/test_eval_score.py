"""`pite eval score`: other models' predictions files scored without a model, under both protocols.

The VTimeLLM log below is written here in the format of VTimeLLM's `vtimellm/eval/log/example_log.txt` (one JSON object
a line: video_id, task, query_id, answer, and for grounding info.sentence_id / info.iou) with our own values. Every
expected number is worked by hand from VTimeLLM's code (`eval.py: iou`, `metric.py`, `dvc_eval/`), as the comments
show: METEOR 1.5 scores an identical pair 1 and an unmatched one 0; pycocoevalcap's CIDEr gives identical pairs 10
when the video's references differ (7.5 for sentences of three tokens: no 4-gram, so one of CIDEr-D's four n-gram
terms is 0), 0 when they are all the same sentence or there is a single pair.
"""

from __future__ import annotations

import json

import pytest

from pite.cli.main import main
from pite.eval.scoring import detect_format, read_video_chatgpt_qa, score_dense_captioning_file

WALK, SIT, READ = "A man walks into the room.", "He sits down on a red chair.", "He reads a book."
REFERENCES = {
    "v_a": {"duration": 50.0, "timestamps": [[0, 10], [10, 30], [30, 50]], "sentences": [WALK, SIT, READ]},
    "v_b": {"duration": 20.0, "timestamps": [[2, 8], [8, 20]], "sentences": ["A dog runs.", "The dog sleeps."]},
    "v_c": {"duration": 40.0, "timestamps": [[0, 40]], "sentences": [SIT]},
    "v_d": {"duration": 40.0, "timestamps": [[2, 15.2]], "sentences": ["A woman dances."]},
    "v_e": {"duration": 20.0, "timestamps": [[0, 10], [10, 20]], "sentences": ["A girl sings.", "A boy claps."]},
}


def events(*items):
    return json.dumps([dict(zip(("event", "timestamps"), item)) for item in items])


CAPTIONS = {
    # all exact, one line: perfect under both protocols
    "v_a": "Here you go:\n" + events((WALK, "from 00 to 19"), (SIT, "from 20 to 59"), (READ, "from 60 to 99")),
    # the list spread over two lines: VTimeLLM's regex (no DOTALL) finds nothing -> no events; corrected reads both
    "v_b": '[{"event": "A dog runs.", "timestamps": "from 10 to 39"},\n'
    ' {"event": "The dog sleeps.", "timestamps": "from 40 to 99"}]',
    # the same sentence twice, touching (50 - 49 = 1): VTimeLLM merges into 00-99 = [0, 40] s, exact
    "v_c": events((SIT, "from 00 to 49"), (SIT, "from 50 to 99")),
    # "from 5 to 37": by position [5:7] = "5 ", [-2:] = "37" -> [2.0, 15.2] s, exact; corrected reads it after "from"
    "v_d": events(("A woman dances.", "from 5 to 37")),
    # an item without "timestamps" stops VTimeLLM's reading: only the first event survives
    "v_e": json.dumps(
        [
            {"event": "A girl sings.", "timestamps": "from 00 to 49"},
            {"event": "A cat meows."},
            {"event": "A boy claps.", "timestamps": "from 50 to 99"},
        ]
    ),
}

GROUNDING = [  # (video, sentence_id, answer, VTimeLLM's IoU)
    ("v_a", 0, "He walks in from 00 to 19.", 0.95),  # [0, .19] vs [0, .2]          (corrected [0, 10] s: 1)
    ("v_a", 1, "from 25 to 59", 0.85),  # [.25, .59] vs [.2, .6]: .34 / .4          (corrected [12.5, 30]: .875)
    ("v_a", 2, "He reads from 45 to 12.", 0.0),  # reversed: no overlap             (corrected: wrong answer, 0)
    ("v_b", 0, "from 10 to 28", 0.6),  # [.1, .28] vs [.1, .4]: .18 / .3            (corrected [2, 5.8]: 3.8 / 6)
    ("v_b", 1, "The dog sleeps from 58 to 99.", 0.68),  # .41 / .6 = .683 -> .68    (corrected [11.6, 20]: .7)
]


def write_log(path, stored_ious=None):
    lines = []
    for video_id, answer in CAPTIONS.items():
        lines.append(json.dumps({"video_id": video_id, "task": "captioning", "query_id": 0, "answer": answer}))
    for k, (video_id, sentence_id, answer, iou) in enumerate(GROUNDING):
        stored = iou if stored_ious is None else stored_ious[k]
        lines.append(
            json.dumps(
                {
                    "video_id": video_id,
                    "task": "grounding",
                    "query_id": 0,
                    "answer": answer,
                    "info": {"sentence_id": sentence_id, "iou": stored},
                }
            )
        )
    lines.insert(3, "this line is not JSON")  # VTimeLLM's metric.py prints and skips such a line
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path):
    references = tmp_path / "references.json"
    references.write_text(json.dumps(REFERENCES), encoding="utf-8")
    return write_log(tmp_path / "log.txt"), references


def score(capsys, *args):
    code = main(["eval", "score", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_grounding_from_vtimellm_log_reference_and_corrected(files, tmp_path, capsys):
    log, references = files
    assert detect_format(log) == "vtimellm"
    output = tmp_path / "g.json"
    code, out, err = score(capsys, "grounding", "--predictions", log, "--references", references, "--output", output)
    assert code == 0, err
    result = json.loads(output.read_text())
    scores = result["scores"]
    # IoUs .95 .85 0 .6 .68: R@0.3 = R@0.5 = 4/5, R@0.7 = 2/5, mIoU = 3.08 / 5
    assert (scores["R@0.3"], scores["R@0.5"], scores["R@0.7"]) == (80.0, 80.0, 40.0)
    assert scores["mIoU"] == pytest.approx(61.6) and scores["num_invalid"] == 1
    assert scores["stored_iou_mismatches"] == [] and scores["unreadable_lines"] == [4]
    assert result["protocol"] == scores["protocol"] == "reference" and result["format"] == "vtimellm"
    assert "Protocol: reference" in out and "| log | 80.0 | 80.0 | 40.0 | 61.6 |" in out
    assert "lines [4]" in err

    code, out, err = score(
        capsys, "grounding", "--predictions", log, "--references", references, "--protocol", "corrected"
    )
    assert code == 0, err
    # IoUs 1 .875 0 .6333 .7: R@0.7 = 3/5 (0.7 counts), mIoU = 3.2083 / 5
    assert "| log | 80.0 | 80.0 | 60.0 | 64.2 |" in out and "Protocol: corrected" in out

    # without references: VTimeLLM's metric.py averages the IoUs the log stored, the same numbers here
    code, out, err = score(capsys, "grounding", "--predictions", log)
    assert code == 0 and "| log | 80.0 | 80.0 | 40.0 | 61.6 |" in out


def test_grounding_stored_iou_mismatch_is_reported(tmp_path, files, capsys):
    _, references = files
    log = write_log(tmp_path / "other.txt", stored_ious=[0.95, 0.85, 0.0, 0.6, 0.7])
    output = tmp_path / "g.json"
    assert score(capsys, "grounding", "--predictions", log, "--references", references, "--output", output)[0] == 0
    # lines: 5 captioning, 1 not JSON, then the 5 grounding ones
    assert json.loads(output.read_text())["scores"]["stored_iou_mismatches"] == ["v_b#1 (line 11)"]


class SharedMeteor:
    """The session's METEOR process handed to the CLI (its JVM start-up takes seconds); closing it is left to the
    session fixture."""

    def __init__(self, meteor):
        self._meteor = meteor

    def __getattr__(self, name):
        return getattr(self._meteor, name)

    def close(self):
        pass


def test_dense_captioning_from_vtimellm_log_reference(files, tmp_path, capsys, meteor, monkeypatch):
    monkeypatch.setattr("pite.eval.dense_captioning.MeteorScorer", lambda: SharedMeteor(meteor))
    log, references = files
    output = tmp_path / "dvc.json"
    code, out, err = score(
        capsys, "dense-captioning", "--predictions", log, "--references", references, "--output", output
    )
    assert code == 0, err
    scores = json.loads(output.read_text())["scores"]
    # per video (every tIoU alike: all kept events are exact): v_a M 1 C 10 P 1 R 1 SODA 1; v_b nothing (0);
    # v_c merged, single pair: M 1 C 0 P 1 R 1 SODA 1; v_d: M 1 C 0 P 1 R 1 SODA 1; v_e one of two: M 1 C 0 P 1 R .5
    # SODA 2/3
    assert scores["protocol"] == "reference" and scores["num_videos"] == 5
    assert scores["METEOR"] == pytest.approx(80.0)
    assert scores["CIDEr"] == pytest.approx(200.0)
    assert scores["Precision"] == pytest.approx(80.0) and scores["Recall"] == pytest.approx(70.0)
    assert scores["F1"] == pytest.approx(2 * 80 * 70 / 150)
    assert scores["SODA_c"] == pytest.approx(100 * (3 + 2 / 3) / 5)
    assert "Protocol: reference" in out


def test_dense_captioning_from_vtimellm_log_corrected(files, meteor):
    log, references = files
    scores = score_dense_captioning_file(log, references, "vtimellm", "corrected", meteor=meteor)
    # v_a, v_b, v_e: two or three exact events (M 1, P = R = 1, SODA 1; C 10 for v_a, 7.5 for the three-token
    # sentences of v_b and v_e); v_d: one exact event (M 1, C 0: a single pair, P = R = 1, SODA 1);
    # v_c: [0, 20] and [20, 40] against [0, 40] (IoU 0.5): at tIoU 0.3 two identical pairs of one sentence
    # (M 1, C 0, P = R = 1), above it unmatched (0); SODA: one of them matched, 0.5 / 2 and 0.5 / 1 -> F = 1/3
    assert scores["per_tiou"][0.3]["METEOR"] == pytest.approx(100.0)
    assert scores["per_tiou"][0.5]["METEOR"] == pytest.approx(80.0)
    assert scores["METEOR"] == pytest.approx(85.0) and scores["CIDEr"] == pytest.approx(100 * (10 + 7.5 + 7.5) / 5)
    assert scores["Precision"] == pytest.approx(85.0) and scores["Recall"] == pytest.approx(85.0)
    assert scores["SODA_c"] == pytest.approx(100 * (4 + 1 / 3) / 5) and scores["protocol"] == "corrected"


VCGPT_WRITTEN = [  # as run_inference_activitynet_qa.py writes them
    {"id": "q1", "question": "what is he doing?", "answer": "running", "pred": "running"},
    {"id": "q2", "question": "what color?", "answer": "red", "pred": "Red."},
]
VCGPT_READ = [  # as evaluate_activitynet_qa.py reads them
    {"video_name": "v_1", "Q": "what is he doing?", "A": "running", "pred": "running"},
    {"video_name": "v_1", "Q": "what color?", "A": "red", "pred": "blue"},
]


def test_qa_reads_both_video_chatgpt_formats(tmp_path, capsys, chat_server):
    written, read = tmp_path / "written.json", tmp_path / "read.json"
    written.write_text(json.dumps(VCGPT_WRITTEN))
    read.write_text(json.dumps(VCGPT_READ))
    assert [s.sample_id for s in read_video_chatgpt_qa(read)] == ["v_1_0", "v_1_1"]  # the judge script's keys
    assert [s.sample_id for s in read_video_chatgpt_qa(written)] == ["q1", "q2"]

    answers = tmp_path / "test_a.json"
    answers.write_text(
        json.dumps(
            [
                {"question_id": "q1", "answer": "running", "type": 0},
                {"question_id": "q2", "answer": "red", "type": 4},
                {"question_id": "q3", "answer": "yes", "type": 3},
            ]
        )
    )
    output = tmp_path / "qa.json"
    code, out, err = score(
        capsys,
        "qa",
        "--predictions",
        written,
        "--references",
        answers,
        "--output",
        output,
        "--judge",
        "openai",
        "--judge-model",
        "m",
        "--judge-base-url",
        chat_server.base_url,
    )
    assert code == 0, err
    result = json.loads(output.read_text())
    # official exact match: q1 only, over all 3 questions of the answers file ("Red." != "red")
    assert result["scores"]["exact_match"]["accuracy"] == pytest.approx(100 / 3)
    assert result["scores"]["exact_match"]["by_type"] == {"0": 100.0, "3": 0.0, "4": 0.0}
    # the test server's judge says yes only to identical strings: 1 of 2
    assert result["scores"]["judge"]["accuracy"] == 50.0 and result["scores"]["judge"]["judge_model"] == "m"
    assert result["scores"]["judge"]["protocol"] == "reference" and result["judge_cache"].endswith(".judgments.sqlite")
    assert "Judge: m (temperature 0.0)" in out and "Protocol: reference" in out
    requests = len(chat_server.requests)
    code, _, _ = score(
        capsys,
        "qa",
        "--predictions",
        written,
        "--references",
        answers,
        "--output",
        output,
        "--overwrite",
        "--judge",
        "openai",
        "--judge-model",
        "m",
        "--judge-base-url",
        chat_server.base_url,
    )
    assert code == 0 and len(chat_server.requests) == requests  # cached: nothing asked twice

    code, out, err = score(capsys, "qa", "--predictions", read, "--protocol", "corrected")
    assert code == 0, err
    assert "Exact-match accuracy: 50.0 (1 of 2)" in out and "Protocol: corrected" in out
    code, out, _ = score(capsys, "qa", "--predictions", written, "--protocol", "corrected")
    assert "Exact-match accuracy: 100.0 (2 of 2)" in out  # "Red." == "red" once case and period are ignored


def test_pite_predictions_without_meta(tmp_path, files, capsys):
    _, references = files
    predictions = tmp_path / "ours.json"
    predictions.write_text(
        json.dumps({"predictions": {"v_a#0": {"output": "From 00 to 19."}, "v_b#1": {"output": "from 40 to 99"}}})
    )
    assert detect_format(predictions) == "pite"
    code, out, err = score(
        capsys, "grounding", "--predictions", predictions, "--references", references, "--protocol", "corrected"
    )
    assert code == 0, err
    assert "| ours | 100.0 | 100.0 | 100.0 | 100.0 |" in out  # both exact in seconds

    # Charades-STA references: "AAAAA 10 20##..." over 100 s; "from 10 to 19" = [10, 20] s (corrected), [0.10, 0.19]
    # of the video (reference: IoU 0.09 / 0.1 = 0.9)
    (tmp_path / "sta.txt").write_text("AAAAA 10 20##a person opens the door.\n", encoding="utf-8")
    (tmp_path / "charades.csv").write_text("id,length\nAAAAA,100\n", encoding="utf-8")
    predictions.write_text(json.dumps({"predictions": {"AAAAA#0": {"output": "from 10 to 19"}}}))
    common = [
        "--predictions",
        predictions,
        "--references",
        tmp_path / "sta.txt",
        "--charades-csv",
        tmp_path / "charades.csv",
    ]
    code, out, err = score(capsys, "grounding", *common, "--protocol", "corrected")
    assert code == 0 and "| ours | 100.0 | 100.0 | 100.0 | 100.0 |" in out, err
    code, out, err = score(capsys, "grounding", *common)
    assert code == 0 and "| ours | 100.0 | 100.0 | 100.0 | 90.0 |" in out, err


@pytest.mark.parametrize(
    "args, message",
    [
        (["grounding", "--predictions", "missing.txt"], "does not exist"),
        (["qa", "--predictions", "LOG"], "format 'vtimellm' holds no qa predictions"),
        (["dense-captioning", "--predictions", "LOG"], "needs --references"),
        (["grounding", "--predictions", "LOG", "--protocol", "corrected"], "give --references"),
        (["qa", "--predictions", "QA", "--judge", "openai"], "--judge needs --judge-model"),
        (["grounding", "--predictions", "LOG", "--judge", "openai", "--judge-model", "m"], "--judge belongs to qa"),
    ],
)
def test_bad_input_is_one_line_exit_2(files, capsys, monkeypatch, args, message):
    log, _ = files
    monkeypatch.chdir(log.parent)
    (log.parent / "qa.json").write_text(json.dumps(VCGPT_WRITTEN))
    code, _, err = score(capsys, *[{"LOG": str(log), "QA": "qa.json"}.get(a, a) for a in args])
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_existing_output_is_not_replaced(files, tmp_path, capsys):
    log, references = files
    output = tmp_path / "keep.json"
    output.write_text("precious")
    code, _, err = score(capsys, "grounding", "--predictions", log, "--output", output)
    assert code == 2 and "--overwrite" in err and output.read_text() == "precious"
