"""File plumbing shared by the hub commands: atomic output folders, weight files, portable configs."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from pite.core.errors import InvalidInputError, MissingInputError, OutputExistsError
from pite.core.inputs import check_safetensors_file

# Keys a config records about where it was loaded from or what it was part of; never part of a new model's config.
PROVENANCE_KEYS = (
    "_name_or_path",
    "name_or_path",
    "architectures",
    "transformers_version",
    "auto_map",
    "dtype",
    "torch_dtype",
)


def require_directory(path: str | os.PathLike, role: str) -> Path:
    """`path` as a Path; raises MissingInputError (a FileNotFoundError) naming the role ('--llm', ...) and the path
    if it is not a folder."""
    folder = Path(path)
    if not folder.is_dir():
        reason = "is a file, not a folder" if folder.exists() else "does not exist"
        raise MissingInputError(f"{role}: {folder} {reason}", path=folder, field=role)
    return folder


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder next to `target`; on success it becomes `target` in one rename.

    On any error the temporary folder is removed and `target` is left as it was. An existing `target` is an error
    unless `overwrite`, in which case it is replaced only after the new folder is complete.
    """
    target = Path(target).absolute()
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target} already exists (pass --overwrite to replace it)", path=target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        yield staging
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, retired / target.name)
            os.replace(staging, target)
            shutil.rmtree(retired)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def load_weights_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A flat {name: tensor} state dict from a `.safetensors` or a PyTorch `.bin` file (tensors only, no pickled
    code)."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{path} does not exist", path=path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        check_safetensors_file(path)
        return load_file(path)
    try:
        weights = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling errors have many types; name the file
        raise InvalidInputError(f"{path}: not a readable PyTorch weights file ({error})", path=path) from error
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise InvalidInputError(f"{path}: expected a dict of tensors, got {type(weights).__name__}", path=path)
    return weights


def portable_config_dict(config: Any) -> dict[str, Any]:
    """A sub-model config as a dict without provenance (source paths, architectures, versions, dtype)."""
    values = config.to_dict()
    for key in PROVENANCE_KEYS:
        values.pop(key, None)
    return values


# Loading arguments transformers 5.x records in a tokenizer's init kwargs and would write to tokenizer_config.json.
TOKENIZER_LOADING_KEYS = ("is_local", "local_files_only", "name_or_path")


def forget_tokenizer_loading_state(tokenizer: Any) -> None:
    """Drop how a tokenizer was loaded (local folder, offline) so that a saved copy does not claim it."""
    for key in TOKENIZER_LOADING_KEYS:
        tokenizer.init_kwargs.pop(key, None)


def forget_config_sources(config: Any) -> None:
    """Clear the load paths transformers records on a config and its sub-configs (nested ones are serialised)."""
    for sub_config in (config, *(getattr(config, name, None) for name in getattr(config, "sub_configs", {}))):
        if sub_config is not None:
            sub_config._name_or_path = ""
