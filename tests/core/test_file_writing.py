"""Atomic file writing (`pite.core.file_writing`): replacement, the old file kept on failure, no temporaries left
behind, usual permissions, data flushed to disk before the move, and the bytes of the JSON/JSONL/text writers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pite.core import file_writing
from pite.core.file_writing import TEMPORARY_PREFIX, atomic_write, write_json, write_jsonl, write_text


def _usual_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def test_write_json_replaces_the_file_with_usual_permissions_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "results.json"  # the missing folder is created
    assert write_json(path, {"b": 1}) == path
    write_json(path, {"b": 2, "a": [1.5], "text": "café"})
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": [1.5], "b": 2, "text": "café"}
    assert path.read_text(encoding="utf-8") == '{\n "a": [\n  1.5\n ],\n "b": 2,\n "text": "café"\n}\n'
    assert path.stat().st_mode & 0o777 == _usual_mode()  # not mkstemp's owner-only 0o600
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]


def test_a_failing_writer_keeps_the_old_file_and_removes_its_temporary(tmp_path):
    target = write_json(tmp_path / "data.json", {"a": 1})

    def broken(temporary: str) -> None:
        Path(temporary).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, broken)
    with pytest.raises(TypeError):  # not JSON: refused before anything is written
        write_json(target, {"bad": object()})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["data.json"]


def test_a_failing_move_removes_the_temporary(tmp_path, monkeypatch):
    def refuse(source, destination):
        raise PermissionError(f"cannot move {source} onto {destination}")

    monkeypatch.setattr(file_writing.os, "replace", refuse)
    with pytest.raises(PermissionError, match="cannot move"):
        write_text(tmp_path / "notes.txt", "x")
    assert list(tmp_path.iterdir()) == []


def test_the_temporary_is_hidden_keeps_the_suffix_and_is_on_disk_before_the_move(tmp_path, monkeypatch):
    """Writers that pick a format from the extension still work; folder scanners skip TEMPORARY_PREFIX names."""
    seen, synced, real_fsync = [], [], os.fsync

    def fsync(descriptor: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{descriptor}"))  # which file was flushed (Linux)
        real_fsync(descriptor)

    def write(temporary: str) -> None:
        seen.append(Path(temporary))
        assert not (tmp_path / "clip.mp4").exists()
        Path(temporary).write_bytes(b"frames")

    monkeypatch.setattr(file_writing.os, "fsync", fsync)
    atomic_write(tmp_path / "clip.mp4", write)
    (temporary,) = seen
    assert temporary.parent == tmp_path and temporary.name.startswith(TEMPORARY_PREFIX + "clip.")
    assert temporary.suffix == ".mp4" and not temporary.exists()
    assert (tmp_path / "clip.mp4").read_bytes() == b"frames"
    assert synced == [str(temporary)]


def test_write_jsonl_and_write_text_bytes(tmp_path):
    path = write_jsonl(tmp_path / "records.jsonl", [{"b": 1, "a": "é"}, {"c": None}])
    assert path.read_text(encoding="utf-8") == '{"a": "é", "b": 1}\n{"c": null}\n'
    assert write_jsonl(tmp_path / "empty.jsonl", []).read_text() == ""
    assert write_text(tmp_path / "report.md", "# r\n").read_text() == "# r\n"
