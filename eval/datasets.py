"""Readers for the evaluation sets as published (docs/FORMATS.md), yielding uniform `EvalRecord`s.

| reader | files | records |
|---|---|---|
| `read_activitynet_captions(..., task="dense_captioning")` | `val_1.json` / `val_2.json` | one per video, GT events |
| `read_activitynet_captions(..., task="grounding")` | same | one per (video, sentence): query + GT interval |
| `read_charades_sta` | `charades_sta_test.txt` + Charades CSV (`id`, `length`) | one per line: query + GT interval |
| `read_msvd_qa` | `test_qa.json` + `youtube_mapping.txt` | one per question |
| `read_msrvtt_qa` | `test_qa.json` | one per question |
| `read_activitynet_qa` | `test_q.json` + `test_a.json` | one per question |

Videos are looked up as `{videos_dir}/{stem}.{mp4,mkv,webm,avi}` (DESIGN.md). The stems tried: ActivityNet
Captions and Charades the video id; MSVD the YouTube clip name that `youtube_mapping.txt` gives for `vid{video_id}`;
MSRVTT `video{video_id}`; ActivityNet-QA `video_name`, then `v_{video_name}` (the QA files drop the `v_` prefix that
the ActivityNet videos carry). A video that is not found leaves `video_path=None` and its id in `missing_videos`: the
reader never fails on it; the runner skips those records and reports them. Without `videos_dir` no lookup happens.

Malformed files raise `DatasetFormatError` naming the file and the record (index / line / id) and field.

Usage:
    >>> data = read_charades_sta(
    ...     "charades_sta_test.txt", "Charades_v1_test.csv", videos_dir="Charades_v1"
    ... )  # doctest: +SKIP
    >>> data.records[0].query, data.records[0].intervals, data.missing_videos  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pite.eval.intervals import Interval

VIDEO_EXTENSIONS = ("mp4", "mkv", "webm", "avi")
TASKS = ("grounding", "dense_captioning", "qa")


class DatasetFormatError(ValueError):
    """A dataset file does not have the published layout; the message names file, record and field."""


@dataclass(frozen=True)
class EvalRecord:
    """One thing to ask the model about, with its ground truth.

    Attributes:
        sample_id: unique within the dataset (question id; `"{video_id}#{k}"` for grounding / Charades lines).
        task: "grounding", "dense_captioning" or "qa".
        video_id: the dataset's video id.
        video_path: the video file found, or None.
        duration: video length in seconds (None for QA sets, which do not publish it).
        query: the grounding sentence or the question; None for dense captioning.
        answer: the QA ground-truth answer; None otherwise.
        intervals: GT intervals in seconds: one for grounding, one per event for dense captioning, none for QA.
        sentences: GT event sentences for dense captioning (aligned with `intervals`).
        extra: anything else published with the record (e.g. the ActivityNet-QA question `type`).
    """

    sample_id: str
    task: str
    video_id: str
    video_path: Path | None = None
    duration: float | None = None
    query: str | None = None
    answer: str | None = None
    intervals: tuple[Interval, ...] = ()
    sentences: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)


@dataclass
class EvalDataset:
    """Records of one evaluation file, and the ids of videos that were looked for and not found."""

    name: str
    records: list[EvalRecord]
    missing_videos: list[str] = field(default_factory=list)

    def with_videos(self) -> list[EvalRecord]:
        """The records whose video was found (all of them when no lookup was asked for)."""
        missing = set(self.missing_videos)
        return [r for r in self.records if r.video_id not in missing]


class _VideoFinder:
    """Finds `{videos_dir}/{stem}.{ext}` and remembers the video ids it could not find (in first-seen order)."""

    def __init__(self, videos_dir: str | Path | None) -> None:
        self.videos_dir = None if videos_dir is None else Path(videos_dir)
        if self.videos_dir is not None and not self.videos_dir.is_dir():
            raise FileNotFoundError(f"videos folder {self.videos_dir} does not exist")
        self.missing: dict[str, None] = {}
        self._found: dict[str, Path | None] = {}

    def find(self, video_id: str, stems: Sequence[str]) -> Path | None:
        if self.videos_dir is None:
            return None
        if video_id not in self._found:
            candidates = (self.videos_dir / f"{stem}.{ext}" for stem in stems for ext in VIDEO_EXTENSIONS)
            self._found[video_id] = next((path for path in candidates if path.is_file()), None)
            if self._found[video_id] is None:
                self.missing[video_id] = None
        return self._found[video_id]


def _load_json(path: str | Path):
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise DatasetFormatError(f"{path}: not valid JSON ({error})") from error


def _require(value, kind: type | tuple[type, ...], where: str, name: str):
    if isinstance(value, bool) or not isinstance(value, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        raise DatasetFormatError(
            f"{where}: field '{name}' must be {'/'.join(k.__name__ for k in kinds)}, got {value!r}"
        )
    return value


def _field(record: dict, name: str, kind: type | tuple[type, ...], where: str):
    if not isinstance(record, dict):
        raise DatasetFormatError(f"{where}: expected an object, got {type(record).__name__}")
    if name not in record:
        raise DatasetFormatError(f"{where}: field '{name}' is missing")
    return _require(record[name], kind, where, name)


def _interval(value, where: str, name: str) -> Interval:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise DatasetFormatError(f"{where}: field '{name}' must be [start, end], got {value!r}")
    start, end = (_require(v, (int, float), where, name) for v in value)
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or start > end:
        raise DatasetFormatError(f"{where}: field '{name}' is not a valid interval (0 <= start <= end): {value!r}")
    return float(start), float(end)


def _positive_duration(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise DatasetFormatError(f"{where}: duration must be a positive number of seconds, got {value!r}")
    return float(value)


def read_activitynet_captions(
    path: str | Path, videos_dir: str | Path | None = None, task: str = "dense_captioning"
) -> EvalDataset:
    """ActivityNet Captions `{video_id: {duration, timestamps, sentences}}` as dense-captioning or grounding
    records."""
    if task not in ("dense_captioning", "grounding"):
        raise ValueError(f"task must be 'dense_captioning' or 'grounding', got {task!r}")
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict):
        raise DatasetFormatError(
            f"{path}: expected an object mapping video ids to annotations, got {type(data).__name__}"
        )
    finder = _VideoFinder(videos_dir)
    records = []
    for video_id, annotation in data.items():
        where = f"{path}: video {video_id!r}"
        duration = _positive_duration(_field(annotation, "duration", (int, float), where), where)
        timestamps = _field(annotation, "timestamps", list, where)
        sentences = _field(annotation, "sentences", list, where)
        if len(timestamps) != len(sentences):
            raise DatasetFormatError(f"{where}: {len(timestamps)} timestamps but {len(sentences)} sentences")
        intervals = tuple(_interval(t, f"{where}, event {k}", "timestamps") for k, t in enumerate(timestamps))
        texts = tuple(_require(s, str, f"{where}, event {k}", "sentences") for k, s in enumerate(sentences))
        video_path = finder.find(video_id, [video_id])
        if task == "dense_captioning":
            records.append(
                EvalRecord(video_id, task, video_id, video_path, duration, intervals=intervals, sentences=texts)
            )
        else:
            records.extend(
                EvalRecord(f"{video_id}#{k}", task, video_id, video_path, duration, query=text, intervals=(interval,))
                for k, (interval, text) in enumerate(zip(intervals, texts))
            )
    return EvalDataset(path.name, records, list(finder.missing))


def read_charades_durations(csv_path: str | Path) -> dict[str, float]:
    """Video id -> `length` (seconds) from a Charades CSV (`Charades_v1_test.csv` / `_train.csv`)."""
    csv_path = Path(csv_path)
    with open(csv_path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"id", "length"} - set(reader.fieldnames or [])
        if missing:
            raise DatasetFormatError(f"{csv_path}: header lacks column(s) {sorted(missing)} (has {reader.fieldnames})")
        durations = {}
        for row_number, row in enumerate(reader, start=2):
            try:
                length = float(row["length"])
            except (TypeError, ValueError) as error:
                raise DatasetFormatError(
                    f"{csv_path}: line {row_number}: 'length' is not a number: {row['length']!r}"
                ) from error
            durations[row["id"]] = _positive_duration(length, f"{csv_path}: line {row_number} (id {row['id']!r})")
    return durations


def read_charades_sta(
    path: str | Path, durations_csv: str | Path | Sequence[str | Path], videos_dir: str | Path | None = None
) -> EvalDataset:
    """Charades-STA lines `VID start end##sentence` as grounding records; durations from the Charades CSV(s)."""
    path = Path(path)
    csv_paths = [durations_csv] if isinstance(durations_csv, (str, Path)) else list(durations_csv)
    durations: dict[str, float] = {}
    for csv_path in csv_paths:
        durations.update(read_charades_durations(csv_path))
    finder = _VideoFinder(videos_dir)
    records = []
    counts: dict[str, int] = {}
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            line = line.strip()
            if not line:
                continue
            where = f"{path}: line {line_number}"
            head, separator, sentence = line.partition("##")
            parts = head.split()
            if not separator or len(parts) != 3 or not sentence.strip():
                raise DatasetFormatError(f"{where}: expected 'VIDEO_ID START END##sentence', got {line!r}")
            video_id = parts[0]
            try:
                interval = _interval([float(parts[1]), float(parts[2])], where, "start/end")
            except ValueError as error:
                if isinstance(error, DatasetFormatError):
                    raise
                raise DatasetFormatError(f"{where}: start/end are not numbers: {parts[1:]!r}") from error
            if video_id not in durations:
                raise DatasetFormatError(
                    f"{where}: video {video_id!r} has no 'length' in {[str(p) for p in csv_paths]}"
                )
            k = counts.get(video_id, 0)
            counts[video_id] = k + 1
            records.append(
                EvalRecord(
                    f"{video_id}#{k}",
                    "grounding",
                    video_id,
                    finder.find(video_id, [video_id]),
                    durations[video_id],
                    query=sentence.strip(),
                    intervals=(interval,),
                )
            )
    return EvalDataset(path.name, records, list(finder.missing))


def _qa_records(path: Path, data, finder: _VideoFinder, stems_of) -> list[EvalRecord]:
    if not isinstance(data, list):
        raise DatasetFormatError(f"{path}: expected a list of question records, got {type(data).__name__}")
    records, seen = [], set()
    for index, item in enumerate(data):
        where = f"{path}: record {index}"
        question = _field(item, "question", str, where)
        answer = _field(item, "answer", (str, int, float), where)
        sample_id = str(_field(item, "id", (int, str), where))
        video_id = str(_field(item, "video_id", (int, str), where))
        if sample_id in seen:
            raise DatasetFormatError(f"{where}: duplicate id {sample_id!r}")
        seen.add(sample_id)
        video_path = finder.find(video_id, stems_of(video_id, where))
        records.append(EvalRecord(sample_id, "qa", video_id, video_path, query=question, answer=str(answer)))
    return records


def read_youtube_mapping(path: str | Path) -> dict[str, str]:
    """MSVD's `youtube_mapping.txt` (`youtube_clip_name vidN` per line) as `{"vidN": youtube_clip_name}`."""
    path = Path(path)
    mapping = {}
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise DatasetFormatError(
                    f"{path}: line {line_number}: expected 'youtube_clip_name vidN', got {line.strip()!r}"
                )
            mapping[parts[1]] = parts[0]
    return mapping


def read_msvd_qa(path: str | Path, youtube_mapping: str | Path, videos_dir: str | Path | None = None) -> EvalDataset:
    """MSVD-QA `[{answer, id, question, video_id}]`; video N is the clip that `youtube_mapping.txt` names `vidN`."""
    path = Path(path)
    mapping = read_youtube_mapping(youtube_mapping)

    def stems(video_id: str, where: str) -> list[str]:
        if f"vid{video_id}" not in mapping:
            raise DatasetFormatError(f"{where}: video_id {video_id!r} (vid{video_id}) is not in {youtube_mapping}")
        return [mapping[f"vid{video_id}"]]

    finder = _VideoFinder(videos_dir)
    records = _qa_records(path, _load_json(path), finder, stems)
    return EvalDataset(path.name, records, list(finder.missing))


def read_msrvtt_qa(path: str | Path, videos_dir: str | Path | None = None) -> EvalDataset:
    """MSRVTT-QA `[{answer, id, question, video_id}]`; video N is `videoN.mp4`."""
    path = Path(path)
    finder = _VideoFinder(videos_dir)
    records = _qa_records(path, _load_json(path), finder, lambda video_id, where: [f"video{video_id}"])
    return EvalDataset(path.name, records, list(finder.missing))


def read_activitynet_qa(
    questions_path: str | Path, answers_path: str | Path, videos_dir: str | Path | None = None
) -> EvalDataset:
    """ActivityNet-QA `*_q.json` `[{video_name, question, question_id}]` joined with `*_a.json`
    `[{answer, type, question_id}]` on `question_id`."""
    questions_path, answers_path = Path(questions_path), Path(answers_path)
    questions, answers = _load_json(questions_path), _load_json(answers_path)
    for file, data in ((questions_path, questions), (answers_path, answers)):
        if not isinstance(data, list):
            raise DatasetFormatError(f"{file}: expected a list of records, got {type(data).__name__}")
    answer_by_id: dict[str, dict] = {}
    for index, item in enumerate(answers):
        where = f"{answers_path}: record {index}"
        question_id = str(_field(item, "question_id", (str, int), where))
        if question_id in answer_by_id:
            raise DatasetFormatError(f"{where}: duplicate question_id {question_id!r}")
        answer_by_id[question_id] = {
            "answer": str(_field(item, "answer", (str, int, float), where)),
            "type": item.get("type"),
        }
    finder = _VideoFinder(videos_dir)
    records, seen = [], set()
    for index, item in enumerate(questions):
        where = f"{questions_path}: record {index}"
        question_id = str(_field(item, "question_id", (str, int), where))
        question = _field(item, "question", str, where)
        video_name = _field(item, "video_name", str, where)
        if question_id in seen:
            raise DatasetFormatError(f"{where}: duplicate question_id {question_id!r}")
        seen.add(question_id)
        if question_id not in answer_by_id:
            raise DatasetFormatError(f"{where}: question_id {question_id!r} has no answer in {answers_path}")
        answer = answer_by_id[question_id]
        stems = [video_name] if video_name.startswith("v_") else [video_name, f"v_{video_name}"]
        records.append(
            EvalRecord(
                question_id,
                "qa",
                video_name,
                finder.find(video_name, stems),
                query=question,
                answer=answer["answer"],
                extra={"type": answer["type"]},
            )
        )
    unanswered = set(answer_by_id) - seen
    if unanswered:
        raise DatasetFormatError(
            f"{answers_path}: {len(unanswered)} answers have no question, e.g. {sorted(unanswered)[:5]}"
        )
    return EvalDataset(questions_path.name, records, list(finder.missing))
