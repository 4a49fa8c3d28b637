"""Loading a PiTe folder: the one loader every command uses (training, evaluation, export, feature extraction).

- `DTYPE_NAMES` / `torch_dtype(name)`: the dtypes a command line may ask for.
- `load_processor(path)`, `load_model(path, dtype, device)`: the two halves, for callers that need the cheap
  processor before deciding whether to load the model (`pite eval` with every answer already saved).
- `load_pite(path, dtype=..., device=...)`: both, checked against each other with `check_model_and_processor`.

The installed classes (`pite.modeling_pite`, `pite.processing`) read the folder and `trust_remote_code=False` is
passed explicitly: the saved files name remote code (`auto_map`), and without it transformers would ask on stdin.
`trust_remote_code=True` loads through `AutoModel` / `AutoProcessor` with the folder's own code instead (what a Hub
user runs). torch is imported on first use, so command-line parsers can import `DTYPE_NAMES` cheaply.
"""

from __future__ import annotations

import os
from typing import Any

DTYPE_NAMES = ("float32", "bfloat16", "float16")


def torch_dtype(name: str) -> Any:
    """'float32' | 'bfloat16' | 'float16' -> the torch dtype, with an error naming the accepted values."""
    import torch

    if name not in DTYPE_NAMES:
        raise ValueError(f"dtype must be one of {sorted(DTYPE_NAMES)}, got {name!r}")
    return getattr(torch, name)


def _label(path: str, field: str | None) -> str:
    return f"{field}={path!r}" if field else repr(path)


def _checked_path(path: str | os.PathLike, field: str | None) -> str:
    """`path` as a string; FileNotFoundError unless it is a folder holding config.json, or looks like a Hub id."""
    path = os.fspath(path)
    looks_local = os.path.isabs(path) or path.startswith(".") or path.strip("/").count("/") != 1
    if looks_local or os.path.isdir(path):  # a Hub id is "owner/name"; anything else must be a folder
        if not os.path.isdir(path):
            raise FileNotFoundError(f"{_label(path, field)}: no such folder (a PiTe checkpoint folder or Hub id)")
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise FileNotFoundError(f"{_label(path, field)}: {path} is not a saved model folder (no config.json)")
    return path


def _loading(path: str, field: str | None, what: str, load: Any) -> Any:
    try:
        return load()
    except OSError as error:  # transformers' "does not appear to have a file named ..." and the like
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise FileNotFoundError(f"{_label(path, field)}: cannot load the PiTe {what} ({first_line})") from error


def load_processor(path: str | os.PathLike, trust_remote_code: bool = False, field: str | None = None) -> Any:
    """The `PiTeProcessor` saved in `path` (cheap: tokenizer and image processor only). `field` names the option
    that gave the path in error messages."""
    path = _checked_path(path, field)
    if trust_remote_code:
        from transformers import AutoProcessor

        return _loading(path, field, "processor", lambda: AutoProcessor.from_pretrained(path, trust_remote_code=True))
    from pite.processing import PiTeProcessor

    return _loading(path, field, "processor", lambda: PiTeProcessor.from_pretrained(path, trust_remote_code=False))


def load_model(
    path: str | os.PathLike,
    dtype: str | Any | None = None,
    device: str | None = None,
    trust_remote_code: bool = False,
    eval_mode: bool = False,
    field: str | None = None,
) -> Any:
    """The PiTe model saved in `path`.

    Args:
        dtype: a name of `DTYPE_NAMES`, a torch dtype, or "auto"; None is "auto" (the checkpoint's dtype).
        device: torch device to move the model to; None leaves it where `from_pretrained` put it (the CPU).
        eval_mode: return it in eval mode (inference) rather than train mode.
        field: the option that gave the path, named in error messages.
    """
    path = _checked_path(path, field)
    if dtype is None:
        dtype = "auto"
    elif isinstance(dtype, str) and dtype != "auto":
        dtype = torch_dtype(dtype)
    if trust_remote_code:
        from transformers import AutoModel

        model = _loading(
            path, field, "model", lambda: AutoModel.from_pretrained(path, trust_remote_code=True, dtype=dtype)
        )
    else:
        from pite.modeling_pite import PiTeForConditionalGeneration

        model = _loading(path, field, "model", lambda: PiTeForConditionalGeneration.from_pretrained(path, dtype=dtype))
    if device is not None:
        model = model.to(device)
    return model.eval() if eval_mode else model


def load_pite(
    path: str | os.PathLike, trust_remote_code: bool = False, field: str | None = None, **model_options: Any
) -> tuple[Any, Any]:
    """(model, processor) of a saved PiTe folder or Hub id, checked to belong together. `model_options` (`dtype`,
    `device`, `eval_mode`) go to `load_model`."""
    processor = load_processor(path, trust_remote_code, field)
    model = load_model(path, trust_remote_code=trust_remote_code, field=field, **model_options)
    check_model_and_processor(model, processor, where=os.fspath(path))
    return model, processor


def check_model_and_processor(model: Any, processor: Any, where: str | None = None) -> None:
    """ValueError unless the processor fits the model: the same `<video>` id, the frame count N of the trajectory
    head, and a tokenizer no larger than the model's vocabulary. `where` (a folder) prefixes the message."""
    config = model.config
    prefix = f"{where}: " if where else ""
    if processor.video_token_id != config.video_token_id:
        raise ValueError(
            f"{prefix}the processor's <video> id {processor.video_token_id} differs from the model's "
            f"video_token_id {config.video_token_id}: they do not belong together"
        )
    if processor.num_frames != config.num_frames:
        raise ValueError(
            f"{prefix}the processor samples {processor.num_frames} frames but the model's trajectory head has "
            f"num_frames={config.num_frames}"
        )
    vocabulary = config.text_config.vocab_size
    if len(processor.tokenizer) > vocabulary:
        raise ValueError(
            f"{prefix}the tokenizer has {len(processor.tokenizer)} tokens, the model's vocabulary {vocabulary}"
        )
