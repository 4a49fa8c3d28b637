"""Finding what would tie a published folder to the machine that wrote it: absolute paths and the host name."""

from __future__ import annotations

import json
import os
import re
import socket
import struct
from collections.abc import Iterable
from pathlib import Path

# Absolute paths under the usual roots of home, scratch and mount folders, and Windows drive paths.
ABSOLUTE_PATH = re.compile(
    r"(?<![\w.~-])(?:/(?:home|root|tmp|work|workspace|Users|mnt|media|data|scratch|var|opt|private|srv|nfs|gpfs|"
    r"lustre|fsx|cache|content)/|[A-Za-z]:\\\\)"
)
# Token vocabularies are arbitrary strings: a short host name may well be a token there.
VOCABULARY_FILES = ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer.model", "vocab.txt")
MIN_HOSTNAME_LENGTH = 4  # shorter names ("vm", "gpu") match ordinary words


def _file_text(path: Path) -> tuple[str | None, bytes]:
    """(decoded text or None for binary files, raw bytes). For safetensors, the JSON header is the text."""
    raw = path.read_bytes()
    if path.suffix == ".safetensors" and len(raw) >= 8:
        (header_length,) = struct.unpack("<Q", raw[:8])
        return raw[8 : 8 + header_length].decode("utf-8", errors="replace"), raw[8 : 8 + header_length]
    try:
        return raw.decode("utf-8"), raw
    except UnicodeDecodeError:
        return None, raw


def machine_specific_strings(
    folder: str | os.PathLike, extra_forbidden: Iterable[str | os.PathLike] = ()
) -> list[str]:
    """Every place in `folder` (recursively) that names an absolute path or this machine.

    Looks for: the absolute-path pattern above in every text file (safetensors: their header); each string of
    `extra_forbidden` (e.g. the folders a command read from) and the home folder, in every file, binary or not;
    the host name, as a word, outside token vocabularies. Returns "file: what was found" lines, empty when clean.
    """
    folder = Path(folder)
    literals = {os.fspath(item) for item in extra_forbidden if os.fspath(item) not in ("", "/")}
    home = os.path.expanduser("~")
    if home not in ("", "/"):
        literals.add(home)
    hostname = socket.gethostname().split(".")[0]
    host_pattern = (
        re.compile(rf"(?<![\w-]){re.escape(hostname)}(?![\w-])", re.IGNORECASE)
        if len(hostname) >= MIN_HOSTNAME_LENGTH
        else None
    )
    problems = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        text, raw = _file_text(path)
        for literal in sorted(literals):
            if literal.encode() in raw:
                problems.append(f"{name}: contains {literal!r}")
        if text is None:
            continue
        for match in ABSOLUTE_PATH.finditer(text):
            snippet = text[match.start() : match.start() + 60].split("\n")[0]
            problems.append(f"{name}: absolute path {json.dumps(snippet)}")
        if host_pattern is not None and path.name not in VOCABULARY_FILES and host_pattern.search(text):
            problems.append(f"{name}: names this machine ({hostname!r})")
    return problems
