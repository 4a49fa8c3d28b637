"""Checks of the files and folders a command is given, made before any heavy work, with errors that name the path.

Shared by every `pite` command (see `pite.core.errors` for the error types and how `pite` reports them):
`check_output_folder` refuses an existing output (and, always, an output that is the command's own input);
`check_safetensors_file` / `check_checkpoint_weights` refuse truncated or corrupted weights by reading headers only;
`reading` turns a dependency's error while loading a path into one naming that path.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path

from .errors import InvalidInputError, MissingInputError, OutputExistsError, UserInputError, one_line


def refuse_own_input(target: str | os.PathLike, inputs: dict[str, str | os.PathLike | None]) -> Path:
    """OutputExistsError if the output `target` is one of the `inputs`, or a folder holding one: writing or replacing
    it would destroy the command's own input, whatever options say. Returns `target` as an absolute Path.

    Args:
        inputs: role ("MODEL_DIR", "--llm", "--data", ...) -> path of each input folder or file (None: not given).
    """
    target = Path(target).absolute()
    resolved = target.resolve()
    for role, source in inputs.items():
        if source is None:
            continue
        source = Path(source).resolve()
        if source == resolved or resolved in source.parents:
            holding = "" if source == resolved else "a folder holding "
            raise OutputExistsError(
                f"the output {target} is {holding}the input {role} {source}: writing it would "
                "destroy that input; choose another output",
                path=target,
            )
    return target


def check_output_folder(target: str | os.PathLike, overwrite: bool, inputs: dict[str, str | os.PathLike]) -> Path:
    """Refuse an output folder before any weight is loaded: one that exists (unless `overwrite`), a file, and, even
    with `overwrite`, one that is or holds an input (see `refuse_own_input`). Returns `target` as an absolute Path."""
    target = refuse_own_input(target, inputs)
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target} already exists (pass --overwrite to replace it)", path=target)
    if target.exists() and not target.is_dir():
        raise OutputExistsError(f"{target} is a file, not a folder; remove it or choose another output", path=target)
    return target


@contextlib.contextmanager
def reading(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Turn a dependency's error while reading `what` from `path` (transformers' OSError, safetensors' error, a JSON
    error) into InvalidInputError naming the path; our own UserInputErrors pass unchanged."""
    from safetensors import SafetensorError

    try:
        yield
    except UserInputError:
        raise
    except (OSError, SafetensorError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidInputError(f"{path}: cannot read {what} ({one_line(error)})", path=path) from error


# A safetensors header is at most 100 MB (the format's own limit).
MAX_SAFETENSORS_HEADER = 100_000_000


def check_safetensors_file(path: str | os.PathLike) -> None:
    """Raise InvalidInputError naming `path` unless it is a complete safetensors file: an 8-byte header length,
    a JSON header, and exactly as many data bytes as the header's tensors end at (a truncated or padded file,
    or one that is not safetensors at all, is refused with what was expected and what was found).

    Reads only the header: cheap for multi-GB shards, and run before transformers or safetensors open the file,
    whose own errors ("MetadataIncompleteBuffer", "HeaderTooLarge") do not say which file.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise InvalidInputError(
                f"{path}: not a safetensors file ({size} bytes, shorter than the 8-byte header length)", path=path
            )
        header_length = struct.unpack("<Q", prefix)[0]
        if header_length > min(MAX_SAFETENSORS_HEADER, size - 8):
            raise InvalidInputError(
                f"{path}: not a complete safetensors file (header of {header_length} bytes "
                f"declared, file of {size} bytes): truncated or not safetensors",
                path=path,
            )
        try:
            header = json.loads(handle.read(header_length))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InvalidInputError(
                f"{path}: not a safetensors file (its header is not JSON: {error})", path=path
            ) from None
    if not isinstance(header, dict):
        raise InvalidInputError(f"{path}: not a safetensors file (its header is not a JSON object)", path=path)
    try:
        data_end = max(
            (int(entry["data_offsets"][1]) for name, entry in header.items() if name != "__metadata__"), default=0
        )
    except (TypeError, KeyError, IndexError, ValueError):
        raise InvalidInputError(
            f"{path}: not a safetensors file (a header entry has no data_offsets)", path=path
        ) from None
    expected = 8 + header_length + data_end
    if size != expected:
        raise InvalidInputError(
            f"{path}: truncated or corrupted safetensors file: its header describes "
            f"{expected} bytes, the file has {size}",
            path=path,
        )


def check_checkpoint_weights(folder: str | os.PathLike) -> None:
    """Check every safetensors file a saved model folder loads (the shards its index names, else
    model.safetensors) is present and complete; errors name the file. Folders with only `.bin` weights pass."""
    folder = Path(folder)
    index_file = folder / "model.safetensors.index.json"
    if index_file.is_file():
        try:
            shards = sorted(set(json.loads(index_file.read_text(encoding="utf-8"))["weight_map"].values()))
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
            raise InvalidInputError(
                f"{index_file}: not a safetensors index (no readable weight_map: {error})", path=index_file
            ) from None
        for shard in shards:
            if not (folder / shard).is_file():
                raise MissingInputError(
                    f"{folder / shard} is missing (named in {index_file.name})", path=folder / shard
                )
            check_safetensors_file(folder / shard)
    elif (folder / "model.safetensors").is_file():
        check_safetensors_file(folder / "model.safetensors")
