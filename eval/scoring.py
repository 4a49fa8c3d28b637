"""Score a predictions file made by any model: no model, no video (`pite eval score`).

Readers (`--format`; `auto` looks at the file):
- `vtimellm` (grounding, dense-captioning): VTimeLLM's evaluation log (`vtimellm/eval/eval.py: write_log`), one JSON
  object a line, `{"video_id", "task": "grounding" or "captioning", "query_id", "answer"}`, grounding lines with
  `"info": {"sentence_id", "iou"}`.
- `video-chatgpt` (qa): a JSON list, either `{id, question, answer, pred}` (as Video-ChatGPT's `run_inference_*.py`
  write it) or `{video_name, Q, A, pred}` (as its `evaluate_activitynet_qa.py` reads it).
- `pite` (grounding, dense-captioning): our predictions file `{"predictions": {sample_id: {"output": ...}}}` (its
  `meta` is not needed).
- `activitynet` (dense-captioning): a dense-captioning submission
  `{"results": {video_id: [{"sentence", "timestamp": [s, e]}]}}`.

References: ActivityNet Captions (`val_1.json` / `val_2.json` layout) for grounding and dense captioning; for QA
optionally ActivityNet-QA's answers file `*_a.json` (official exact-match accuracy by `question_id`, per type).

Grounding from a VTimeLLM log: the query is `references[video_id]["timestamps"][info.sentence_id]`, and the answer is
scored again from its text; the IoU the log stored is checked against it (`stored_iou_mismatches`). Without
`--references` the stored IoUs are averaged, which is exactly what VTimeLLM's `metric.py: grounding_metrics` does
(reference protocol only). Dense captioning from a VTimeLLM log: each `captioning` line is one video's answer (a
later line for the same video replaces an earlier one, as in `metric.py: captioning_metrics`). Lines that are not
JSON are skipped as there, but counted and listed (`unreadable_lines`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pite.eval.datasets import DatasetFormatError, read_activitynet_captions, read_charades_sta
from pite.eval.dense_captioning import dense_captioning_scores
from pite.eval.grounding import aggregate_ious, grounding_text_scores, reference_text_ious
from pite.eval.intervals import DEFAULT_NUM_FRAMES
from pite.eval.judge import QASample
from pite.eval.predictions import PredictionStore
from pite.eval.protocols import DEFAULT_PROTOCOL, check_protocol, vtimellm_grounding_span
from pite.eval.runner import read_dense_captions, score_dense_captioning, score_grounding

SCORE_TASKS = ("grounding", "dense-captioning", "qa")
SCORE_FORMATS = ("auto", "vtimellm", "video-chatgpt", "pite", "activitynet")
TASK_FORMATS = {
    "grounding": ("vtimellm", "pite"),
    "dense-captioning": ("vtimellm", "pite", "activitynet"),
    "qa": ("video-chatgpt",),
}


class PredictionsFormatError(ValueError):
    """A predictions file does not have the layout of its format; the message names file, line or record, field."""


def detect_format(path: str | Path) -> str:
    """The format of a predictions file by its content (see the module table), or a `PredictionsFormatError`."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        first = next((line for line in text.splitlines() if line.strip()), "")
        try:
            record = json.loads(first)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict) and "video_id" in record and "task" in record:
            return "vtimellm"
        raise PredictionsFormatError(f"{path}: neither a JSON file nor a VTimeLLM log (one JSON object a line)")
    if isinstance(data, list):
        return "video-chatgpt"
    if isinstance(data, dict) and "video_id" in data and "task" in data:
        return "vtimellm"  # a log of one line
    if isinstance(data, dict) and isinstance(data.get("predictions"), dict):
        return "pite"
    if isinstance(data, dict) and isinstance(data.get("results"), dict):
        return "activitynet"
    raise PredictionsFormatError(
        f"{path}: unknown predictions layout (expected a VTimeLLM log, a Video-ChatGPT JSON list, a pite predictions "
        "file with 'predictions' or an ActivityNet submission with 'results'): give --format"
    )


@dataclass
class VTimeLLMLog:
    """The entries of a VTimeLLM evaluation log, and the numbers of the lines that were not JSON objects."""

    entries: list[tuple[int, dict]] = field(default_factory=list)  # (line number, object)
    unreadable_lines: list[int] = field(default_factory=list)


def read_vtimellm_log(path: str | Path) -> VTimeLLMLog:
    """Every JSON-object line of a VTimeLLM log with its line number; other non-empty lines are unreadable."""
    log = VTimeLLMLog()
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                log.unreadable_lines.append(number)
                continue
            if isinstance(entry, dict):
                log.entries.append((number, entry))
            else:
                log.unreadable_lines.append(number)
    return log


def _log_field(path: Path, number: int, entry: dict, name: str, kind: type | tuple[type, ...]) -> Any:
    value = entry.get(name)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise PredictionsFormatError(f"{path}: line {number}: field {name!r} missing or not {kind}: {value!r}")
    return value


def _references(path: str | Path | None, task: str) -> dict[str, dict]:
    """An ActivityNet Captions file, validated by the dataset reader, as `{video_id: annotation}`."""
    if path is None:
        raise ValueError(f"scoring {task} needs --references (an ActivityNet Captions file such as val_2.json)")
    read_activitynet_captions(path, None, task="dense_captioning")  # validates, names file / video / field
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _no_entries(path: Path, what: str) -> None:
    raise PredictionsFormatError(f"{path}: holds no {what}")


def score_vtimellm_grounding(
    log_path: str | Path,
    references_path: str | Path | None,
    protocol: str = DEFAULT_PROTOCOL,
    num_frames: int = DEFAULT_NUM_FRAMES,
) -> dict[str, object]:
    """R@1 / mIoU of the `grounding` lines of a VTimeLLM log (see the module docstring)."""
    check_protocol(protocol)
    log_path = Path(log_path)
    log = read_vtimellm_log(log_path)
    lines = [(n, e) for n, e in log.entries if e.get("task") == "grounding"]
    if not lines:
        _no_entries(log_path, "grounding lines (task 'grounding')")
    extra: dict[str, object] = {"unreadable_lines": log.unreadable_lines}
    if references_path is None:
        if protocol != "reference":
            raise ValueError(
                "without --references only the IoUs stored in the log can be used, which are "
                "VTimeLLM's: give --references to score under the corrected protocol"
            )
        ious, invalid = [], 0
        for number, entry in lines:
            info = _log_field(log_path, number, entry, "info", dict)
            ious.append(float(_log_field(log_path, number, info, "iou", (int, float))))
            span = vtimellm_grounding_span(str(entry.get("answer", "")), num_frames)
            invalid += span is None or span[0] > span[1]
        scores = aggregate_ious(ious, invalid, protocol=protocol)
        return {**scores, **extra, "source": "IoUs stored in the log (VTimeLLM's metric.py)"}
    references = _references(references_path, "grounding")
    answers, intervals, durations, ids, stored = [], [], [], [], []
    for number, entry in lines:
        video_id = str(_log_field(log_path, number, entry, "video_id", str))
        info = _log_field(log_path, number, entry, "info", dict)
        sentence_id = _log_field(log_path, number, info, "sentence_id", int)
        if video_id not in references:
            raise PredictionsFormatError(f"{log_path}: line {number}: video {video_id!r} is not in {references_path}")
        timestamps = references[video_id]["timestamps"]
        if not 0 <= sentence_id < len(timestamps):
            raise PredictionsFormatError(
                f"{log_path}: line {number}: sentence_id {sentence_id} is not an event of "
                f"{video_id!r} in {references_path} ({len(timestamps)} events)"
            )
        answers.append(str(_log_field(log_path, number, entry, "answer", str)))
        intervals.append(tuple(timestamps[sentence_id]))
        durations.append(float(references[video_id]["duration"]))
        ids.append(f"{video_id}#{sentence_id} (line {number})")
        stored.append(info.get("iou"))
    scores = grounding_text_scores(answers, intervals, durations, num_frames, protocol=protocol, query_ids=ids)
    if protocol == "reference":
        recomputed, _ = reference_text_ious(answers, intervals, durations, num_frames, ids)
        extra["stored_iou_mismatches"] = [
            ids[k] for k, (s, r) in enumerate(zip(stored, recomputed)) if s is not None and abs(s - r) > 1e-9
        ]
    return {**scores, **extra}


def vtimellm_log_captions(
    log_path: str | Path,
    references: Mapping[str, Mapping],
    protocol: str = DEFAULT_PROTOCOL,
    num_frames: int = DEFAULT_NUM_FRAMES,
) -> tuple[dict[str, list[dict]], list[int]]:
    """`({video_id: [{"sentence", "timestamp"}]}, unreadable line numbers)` of a log's `captioning` lines."""
    log_path = Path(log_path)
    log = read_vtimellm_log(log_path)
    answers: dict[str, str] = {}
    for number, entry in log.entries:
        if entry.get("task") != "captioning":
            continue
        video_id = str(_log_field(log_path, number, entry, "video_id", str))
        if video_id not in references:
            raise PredictionsFormatError(f"{log_path}: line {number}: video {video_id!r} is not in the references")
        answers[video_id] = _log_field(log_path, number, entry, "answer", str)
    if not answers:
        _no_entries(log_path, "dense-captioning lines (task 'captioning')")
    predictions = {
        v: read_dense_captions(answer, float(references[v]["duration"]), num_frames, protocol)
        for v, answer in answers.items()
    }
    return predictions, log.unreadable_lines


def score_dense_captioning_file(
    predictions_path: str | Path,
    references_path: str | Path | None,
    fmt: str,
    protocol: str = DEFAULT_PROTOCOL,
    num_frames: int = DEFAULT_NUM_FRAMES,
    meteor=None,
) -> dict[str, object]:
    """SODA_c, CIDEr, METEOR, P / R / F1 of a predictions file in format `fmt` (see the module docstring)."""
    check_protocol(protocol)
    references = _references(references_path, "dense-captioning")
    extra: dict[str, object] = {}
    if fmt == "vtimellm":
        predictions, unreadable = vtimellm_log_captions(predictions_path, references, protocol, num_frames)
        extra["unreadable_lines"] = unreadable
    elif fmt == "activitynet":
        with open(predictions_path, encoding="utf-8") as handle:
            predictions = json.load(handle)["results"]
        if not predictions:
            _no_entries(Path(predictions_path), "videos in 'results'")
    elif fmt == "pite":
        dataset = read_activitynet_captions(references_path, None, task="dense_captioning")
        return score_dense_captioning(dataset, _pite_store(predictions_path), num_frames, meteor, protocol)
    else:
        raise ValueError(f"format {fmt!r} holds no dense-captioning predictions")
    try:
        scores = dense_captioning_scores(predictions, references, meteor=meteor, protocol=protocol)
    except ValueError as error:
        raise ValueError(f"{predictions_path}: {error}") from error
    return {**scores, **extra}


def _pite_store(path: str | Path) -> PredictionStore:
    store = PredictionStore(path)  # no meta given: any meta (or none) is accepted
    if not len(store):
        _no_entries(Path(path), "predictions")
    return store


def score_grounding_file(
    predictions_path: str | Path,
    references_path: str | Path | None,
    fmt: str,
    protocol: str = DEFAULT_PROTOCOL,
    num_frames: int = DEFAULT_NUM_FRAMES,
    charades_csv: list[str | Path] | None = None,
) -> dict[str, object]:
    """R@1 at IoU 0.3 / 0.5 / 0.7 and mIoU of a predictions file in format `fmt`.

    With `charades_csv` the references are Charades-STA (`charades_sta_test.txt`, durations from the CSVs; `pite`
    format only: sample ids `{video_id}#{line}` as `pite eval grounding` writes them).
    """
    if fmt == "vtimellm":
        if charades_csv:
            raise ValueError(
                "a VTimeLLM log names ActivityNet-style sentence ids: score it against ActivityNet "
                "Captions references, without --charades-csv"
            )
        return score_vtimellm_grounding(predictions_path, references_path, protocol, num_frames)
    if fmt == "pite":
        if references_path is None:
            raise ValueError(
                "scoring grounding needs --references (an ActivityNet Captions file such as val_2.json, "
                "or charades_sta_test.txt with --charades-csv)"
            )
        if charades_csv:
            dataset = read_charades_sta(references_path, charades_csv, None)
        else:
            dataset = read_activitynet_captions(references_path, None, task="grounding")
        return score_grounding(dataset, _pite_store(predictions_path), num_frames, protocol)
    raise ValueError(f"format {fmt!r} holds no grounding predictions")


def read_video_chatgpt_qa(path: str | Path) -> list[QASample]:
    """QA predictions in either Video-ChatGPT layout, as `QASample`s.

    `{id, question, answer, pred}`: the sample id is `id` (the dataset's question id). `{video_name, Q, A, pred}`:
    as Video-ChatGPT's judge script names them, `{video_name}_{k}` with k counting that video's questions from 0.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as handle:
            items = json.load(handle)
    except json.JSONDecodeError as error:
        raise PredictionsFormatError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(items, list):
        raise PredictionsFormatError(f"{path}: expected a JSON list of QA predictions, got {type(items).__name__}")
    if not items:
        _no_entries(path, "QA predictions")
    samples, per_video = [], {}
    for index, item in enumerate(items):
        where = f"{path}: record {index}"
        if not isinstance(item, dict):
            raise PredictionsFormatError(f"{where}: expected an object, got {type(item).__name__}")
        if "video_name" in item or "Q" in item:
            names = ("video_name", "Q", "A", "pred")
        else:
            names = ("id", "question", "answer", "pred")
        missing = [name for name in names if name not in item]
        if missing:
            raise PredictionsFormatError(
                f"{where}: field(s) {missing} missing (a record holds either "
                "{id, question, answer, pred} or {video_name, Q, A, pred})"
            )
        key, question, answer, prediction = (item[name] for name in names)
        if names[0] == "video_name":
            per_video[key] = per_video.get(key, -1) + 1
            key = f"{key}_{per_video[key]}"
        for name, value in zip(names[1:], (question, answer, prediction)):
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise PredictionsFormatError(f"{where}: field {name!r} must be text, got {value!r}")
        samples.append(QASample(str(key), str(question), str(answer), str(prediction)))
    ids = [s.sample_id for s in samples]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise PredictionsFormatError(f"{path}: sample id {duplicate!r} occurs more than once")
    return samples


def _normalise_answer(text: str) -> str:
    return " ".join(text.strip().lower().rstrip(".").split())


def exact_match_scores(
    samples: list[QASample], answers_path: str | Path | None = None, protocol: str = DEFAULT_PROTOCOL
) -> dict[str, object]:
    """Exact-match accuracy (percent), ActivityNet-QA's official metric (MILVLG/activitynet-qa `evaluation/eval.py`).

    With `answers_path` (ActivityNet-QA `*_a.json`): a prediction is correct when it equals the answer of its
    `question_id` (the sample id), and the accuracy is over *every* question of that file (an unanswered one is
    wrong), overall and per `type` (0 motion, 1 spatial, 2 temporal, 3-8 free: yes/no, color, object, location,
    number, other), as there. Without it: over the samples, against their own answers. `"reference"` compares the
    strings exactly, as there; `"corrected"` ignores case, surrounding spaces and a final period.
    """
    check_protocol(protocol)
    if not samples:
        raise ValueError("no QA predictions to score")

    def same(prediction: str, answer: str) -> bool:
        if protocol == "reference":
            return prediction == answer
        return _normalise_answer(prediction) == _normalise_answer(answer)

    if answers_path is None:
        correct = sum(1 for s in samples if same(s.prediction, s.answer))
        return {
            "accuracy": 100.0 * correct / len(samples),
            "num_correct": correct,
            "num_questions": len(samples),
            "protocol": protocol,
        }
    answers_path = Path(answers_path)
    with open(answers_path, encoding="utf-8") as handle:
        answers = json.load(handle)
    if not isinstance(answers, list) or not answers:
        raise DatasetFormatError(f"{answers_path}: expected a non-empty JSON list of {{answer, type, question_id}}")
    by_id = {}
    for index, item in enumerate(answers):
        if not isinstance(item, dict) or not {"answer", "question_id"} <= set(item):
            raise DatasetFormatError(f"{answers_path}: record {index}: needs 'answer' and 'question_id'")
        by_id[str(item["question_id"])] = item
    predicted = {s.sample_id: s.prediction for s in samples}
    unknown = [i for i in predicted if i not in by_id]
    if unknown:
        raise PredictionsFormatError(
            f"{len(unknown)} predictions have an id that is no question_id in {answers_path}: {unknown[:5]} "
            "(exact match needs the {id, question, answer, pred} layout)"
        )
    per_type: dict[str, list[int]] = {}
    for question_id, item in by_id.items():
        hit = question_id in predicted and same(predicted[question_id], str(item["answer"]))
        counts = per_type.setdefault(str(item.get("type")), [0, 0])
        counts[0] += int(hit)
        counts[1] += 1
    correct = sum(c for c, _ in per_type.values())
    return {
        "accuracy": 100.0 * correct / len(by_id),
        "num_correct": correct,
        "num_questions": len(by_id),
        "by_type": {t: 100.0 * c / n for t, (c, n) in sorted(per_type.items())},
        "protocol": protocol,
    }
