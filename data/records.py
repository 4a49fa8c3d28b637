"""Training examples: the one shape every stage's annotation loader produces, and the bad-record policy.

A loader turns one annotation record into a `TrainingExample`: a conversation (messages in the processor's chat
format), the image or video it shows, and the regression targets attached to character spans of its answers. Records
that cannot become an example raise `BadRecordError` naming the file, the line and the record; `BadRecordPolicy`
either re-raises it or skips the record and counts it (`skip_bad_records`).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .targets import SpanTarget

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov")
IMAGE_EXTENSIONS = (".jpg", ".png", ".jpeg")


class BadRecordError(ValueError):
    """An annotation record that cannot be trained on; the message names the file, line/index and record."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


@dataclass
class TrainingExample:
    """One conversation to train on.

    Attributes:
        example_id: the record's own id (video_id, image_id, ...), for logs and errors.
        where: "file:line (id)" of the record, for errors.
        media_kind: "video" or "image" (an image is a one-frame video: one `<video>` token).
        media_path: absolute path of the image or video file.
        media_key: the file's path relative to its media folder, POSIX separators: its key in a feature cache.
        messages: `[{"role": "user"|"assistant", "content": str | [{"type": "video"|"image"|"text", ...}]}]`.
        point_targets: stage 1, or None: `SpanTarget`s with a point `value` (2,), spans into the answer of `turn`.
        trajectory_targets: stage 2, or None: the same with a trajectory `value` (P, N, 2).
        supervises_regression: False for an example whose targets exist only so that it batches with others
            (stage-3 instructions beside replayed stage-2 conversations): none of its positions counts in the L1
            terms, whatever the model's `absent_targets`.
        duration: the video's length in seconds as the record states it (stage 2: its times and trajectories are
            relative to it), checked against the file's when media are verified; None where the record has none.
    """

    example_id: str
    where: str
    media_kind: str
    media_path: str
    media_key: str
    messages: list[dict[str, Any]]
    point_targets: list[SpanTarget] | None = None
    trajectory_targets: list[SpanTarget] | None = None
    supervises_regression: bool = True
    duration: float | None = None

    def to_row(self) -> dict[str, Any]:
        """A row of a `datasets.Dataset` with the columns `row_features()` declares (no schema left to guess)."""
        return {
            "example_id": self.example_id,
            "where": self.where,
            "media_kind": self.media_kind,
            "media_path": self.media_path,
            "media_key": self.media_key,
            "messages": [_message_row(message, self.where) for message in self.messages],
            "point_targets": _targets_row(self.point_targets),
            "trajectory_targets": _targets_row(self.trajectory_targets),
            "supervises_regression": self.supervises_regression,
            "duration": self.duration,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "TrainingExample":
        """The example `to_row` stored (target values as numpy arrays)."""
        return cls(
            example_id=row["example_id"],
            where=row["where"],
            media_kind=row["media_kind"],
            media_path=row["media_path"],
            media_key=row["media_key"],
            messages=[_message_from_row(message) for message in row["messages"]],
            point_targets=_targets_from_row(row["point_targets"]),
            trajectory_targets=_targets_from_row(row["trajectory_targets"]),
            supervises_regression=row["supervises_regression"],
            duration=row["duration"],
        )


def row_features(value_rank: dict[str, int] | None = None) -> Any:
    """The `datasets.Features` of `TrainingExample.to_row`: a message's content is either `text` (a string) or
    `parts` (`{"type", "text"}` items); a target's `value` is a point (2,) or a trajectory (P, N, 2)."""
    import datasets

    def nested(rank: int) -> Any:
        feature: Any = datasets.Value("float64")
        for _ in range(rank):
            feature = datasets.List(feature)
        return feature

    def targets(rank: int) -> Any:
        return datasets.List(
            {
                "turn": datasets.Value("int32"),
                "start": datasets.Value("int32"),
                "end": datasets.Value("int32"),
                "name": datasets.Value("string"),
                "value": nested(rank),
            }
        )

    string = datasets.Value("string")
    return datasets.Features(
        {
            "example_id": string,
            "where": string,
            "media_kind": string,
            "media_path": string,
            "media_key": string,
            "messages": datasets.List(
                {"role": string, "text": string, "parts": datasets.List({"type": string, "text": string})}
            ),
            "point_targets": targets(1),
            "trajectory_targets": targets(3),
            "supervises_regression": datasets.Value("bool"),
            "duration": datasets.Value("float64"),
        }
    )


def _message_row(message: dict[str, Any], where: str) -> dict[str, Any]:
    content = message["content"]
    if isinstance(content, str):
        return {"role": message["role"], "text": content, "parts": None}
    for part in content:
        if set(part) - {"type", "text"}:
            raise BadRecordError(where, f"a message part may hold only 'type' and 'text', got {sorted(part)}")
    parts = [{"type": part["type"], "text": part.get("text")} for part in content]
    return {"role": message["role"], "text": None, "parts": parts}


def _message_from_row(row: dict[str, Any]) -> dict[str, Any]:
    if row["parts"] is None:
        return {"role": row["role"], "content": row["text"]}
    parts = [{"type": p["type"], **({"text": p["text"]} if p["text"] is not None else {})} for p in row["parts"]]
    return {"role": row["role"], "content": parts}


def _targets_row(targets: list[SpanTarget] | None) -> list[dict[str, Any]] | None:
    if targets is None:
        return None
    return [
        {
            "turn": t.turn,
            "start": t.span[0],
            "end": t.span[1],
            "name": t.name,
            "value": np.asarray(t.value, dtype=np.float64).tolist(),
        }
        for t in targets
    ]


def _targets_from_row(rows: list[dict[str, Any]] | None) -> list[SpanTarget] | None:
    if rows is None:
        return None
    return [
        SpanTarget(
            span=(r["start"], r["end"]), value=np.asarray(r["value"], dtype=np.float64), turn=r["turn"], name=r["name"]
        )
        for r in rows
    ]


@dataclass
class BadRecordPolicy:
    """Raise on the first bad record, or (skip=True) skip bad records and count them per reason."""

    skip: bool = False
    skipped: list[str] = field(default_factory=list)

    def handle(self, error: BadRecordError) -> None:
        if not self.skip:
            raise error
        self.skipped.append(str(error))
        logger.warning("skipping bad record: %s", error)

    def summary(self, total: int, name: str) -> str:
        return f"{name}: {total - len(self.skipped)} of {total} records kept, {len(self.skipped)} skipped as bad"


def skip_summary(skipped: Mapping[str, str]) -> str:
    """`{where: reason}` of skipped records -> one line: the count per kind of reason, and the first of each kind.

    The kind is the reason up to its first colon, so 500 missing videos read as one kind with one example instead of
    500 paths.

    >>> missing = {"line 1": "video not found: '1.mp4'", "line 2": "video not found: '2.mp4'"}
    >>> print(skip_summary({**missing, "line 3": "empty"}))
    3 skipped: 2 x video not found (first: line 1: video not found: '1.mp4'); 1 x empty (first: line 3: empty)
    """
    counts: Counter[str] = Counter()
    first: dict[str, str] = {}
    for where, reason in skipped.items():
        kind = reason.split(":", 1)[0].strip()
        counts[kind] += 1
        first.setdefault(kind, f"{where}: {reason}")
    parts = [f"{count} x {kind} (first: {first[kind]})" for kind, count in counts.items()]
    return f"{len(skipped)} skipped: " + "; ".join(parts) if skipped else "none skipped"


def find_media(folder: str, stem: str, extensions: Iterable[str], where: str) -> str:
    """The first existing `{folder}/{stem}{ext}`; BadRecordError listing the tried paths when none exists."""
    tried = [os.path.join(folder, stem + extension) for extension in extensions]
    for path in tried:
        if os.path.isfile(path):
            return path
    raise BadRecordError(where, f"media file not found (tried {', '.join(repr(p) for p in tried)})")


def media_in_folder(folder: str, relative: str, where: str) -> tuple[str, str]:
    """(absolute path, cache key) of a file given relative to `folder`; BadRecordError if it is missing or escapes."""
    if not isinstance(relative, str) or not relative.strip():
        raise BadRecordError(where, f"media path must be a non-empty string, got {relative!r}")
    path = os.path.normpath(os.path.join(folder, relative))
    key = os.path.relpath(path, folder).replace(os.sep, "/")
    if key.startswith("../") or os.path.isabs(relative):
        raise BadRecordError(where, f"media path {relative!r} must lie inside the media folder {folder!r}")
    if not os.path.isfile(path):
        raise BadRecordError(where, f"media file not found: {path!r}")
    return path, key


def media_key(folder: str, path: str) -> str:
    return os.path.relpath(path, folder).replace(os.sep, "/")


def read_json_records(path: str) -> Iterator[tuple[str, Any]]:
    """(where, record) for a JSONL file (one object per line) or a JSON file holding a list.

    A line that is not valid JSON is yielded as a `BadRecordError` instance in place of the record, so the caller's
    policy decides whether it stops the run.
    """
    name = os.path.basename(path)
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from error
        for index, record in enumerate(records):
            yield f"{name} item {index}", record
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{name} line {number}"
        try:
            yield where, json.loads(line)
        except json.JSONDecodeError as error:
            yield where, BadRecordError(where, f"not valid JSON ({error.msg} at column {error.colno})")


def require(record: Any, keys: Iterable[str], where: str) -> None:
    if not isinstance(record, dict):
        raise BadRecordError(where, f"expected a JSON object, got {type(record).__name__}")
    missing = [key for key in keys if key not in record]
    if missing:
        raise BadRecordError(where, f"missing field(s) {missing}")
