"""The common part of the annotator's transformers-backed components: where and in what dtype their model runs.

`Owlv2Grounder`, `SamSegmenter` and `Sam2VideoPropagator` each resolve `device`/`dtype` the same way and load
their model the same way (in that dtype, moved to that device, in eval mode); this base class is that one place.
"""

from __future__ import annotations

import os
from typing import Any

from .components import load_checkpoint, resolve_device, resolve_dtype


class PretrainedComponent:
    """Holds `device` (torch.device) and `dtype` (torch.dtype) and loads models onto them.

    Args:
        device: torch device name; None -> CUDA if available, else CPU.
        dtype: "float32", "bfloat16" or "float16"; None -> float32.
    """

    def __init__(self, device: str | None = None, dtype: str | None = None) -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype)

    def load_model(self, model_class: Any, checkpoint: str | os.PathLike, what: str) -> Any:
        """`model_class.from_pretrained(checkpoint)` in `self.dtype` on `self.device`, in eval mode.

        `what` names the component in the error raised when the checkpoint cannot be loaded.
        """
        model = load_checkpoint(model_class.from_pretrained, checkpoint, what, dtype=self.dtype)
        return model.to(self.device).eval()
