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
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

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
        point_targets: stage 1, or None: `[{"turn", "span", "value" (2,), "name"}]`, spans into the answer of `turn`.
        trajectory_targets: stage 2, or None: the same with `value` of shape (P, N, 2).
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
    point_targets: list[dict[str, Any]] | None = None
    trajectory_targets: list[dict[str, Any]] | None = None
    supervises_regression: bool = True
    duration: float | None = None

    def to_row(self) -> dict[str, Any]:
        """A flat row for a `datasets.Dataset` (nested structures as JSON text, so Arrow never guesses a schema)."""
        row = asdict(self)
        for key in ("messages", "point_targets", "trajectory_targets"):
            row[key] = json.dumps(row[key]) if row[key] is not None else ""
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "TrainingExample":
        values = dict(row)
        for key in ("messages", "point_targets", "trajectory_targets"):
            values[key] = json.loads(values[key]) if values.get(key) else None
        return cls(**{k: values[k] for k in cls.__dataclass_fields__})


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
