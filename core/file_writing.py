"""Writing files atomically: the one place the package does it.

A file is written to a temporary name in its destination folder, flushed to disk (`fsync`) and moved onto the
destination with `os.replace`, so a reader sees either the previous complete file or the new complete one, never a
half-written one, and a failed write leaves the previous file as it was and removes its temporary.

Temporaries are hidden, start with `TEMPORARY_PREFIX` (folder scanners skip such names) and keep the destination's
suffix, so writers that pick a format from the extension still work. They are created with mode 0o666 less the
process umask, so finished files get the usual permissions (not the owner-only 0o600 of `tempfile.mkstemp`).

It imports only the standard library.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path

TEMPORARY_PREFIX = ".tmp-"
_NAME_ATTEMPTS = 100


def _create_temporary(path: Path) -> Path:
    """A new, empty file next to `path`, created exclusively so no other writer shares it."""
    for _ in range(_NAME_ATTEMPTS):
        temporary = path.parent / f"{TEMPORARY_PREFIX}{path.stem}.{secrets.token_hex(6)}{path.suffix}"
        try:
            # The OS applies the umask to 0o666, as for any file a program creates.
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return temporary
    raise FileExistsError(f"could not create a temporary file for {path} in {path.parent}: every name tried exists")


def _sync_to_disk(path: Path) -> None:
    # Opened afresh after writing: the writer may have reopened (truncated) the file under the same name.
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call `write(temporary_path)` to fill a temporary file next to `path`, then move it onto `path`.

    The parent folder is created if missing. If `write` (or the move) raises, the temporary is removed, `path` is
    left as it was and the error propagates. Returns `path` as a Path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _create_temporary(path)
    try:
        write(os.fspath(temporary))
        _sync_to_disk(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` as UTF-8, atomically."""

    def write(temporary: str) -> None:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)

    return atomic_write(path, write)


def write_json(path: str | os.PathLike, data: object) -> Path:
    """Write `data` as indented JSON with sorted keys and a final newline: the same data always gives the same bytes.

    Non-ASCII text is kept as UTF-8. Data that JSON cannot hold raises TypeError/ValueError before anything is written.
    """
    return write_text(path, json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def write_jsonl(path: str | os.PathLike, records: Iterable[object]) -> Path:
    """Write one compact JSON object (sorted keys) a line, atomically."""
    return write_text(
        path, "".join(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n" for record in records)
    )
