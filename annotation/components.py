"""The pluggable steps of the annotator, as small protocols, and the default composition of the first two.

    first frame + phrases --FirstFrameMasker--> one mask per phrase (or a failure reason)
        default: GroundAndSegment = Grounder (phrase -> box) then Segmenter (box -> mask)
    frames + first-frame masks --Propagator--> per-frame masks of every object

Any object with these methods plugs in (tests plug in a colour-threshold ground truth for both). All images are
(H, W, 3) uint8 RGB; masks are bool; boxes are `(x0, y0, x1, y1)` float pixels.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

# Failure reasons a FirstFrameMasker may give for a phrase (counted in the summary).
NOT_GROUNDED = "not_grounded"
EMPTY_MASK = "empty_mask"


@dataclass(frozen=True)
class Detection:
    """One grounded phrase: box `(x0, y0, x1, y1)` in pixels of the image it was found in, and its score."""

    box: tuple[float, float, float, float]
    score: float


@runtime_checkable
class Grounder(Protocol):
    """Open-vocabulary detection: the best box for each phrase in one image, or None where there is none."""

    def ground(self, image: np.ndarray, phrases: list[str]) -> list[Detection | None]: ...


@runtime_checkable
class Segmenter(Protocol):
    """Box-prompted segmentation: masks (K, H, W) bool of one image for boxes (K, 4)."""

    def segment(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class FirstFrameMasker(Protocol):
    """Each phrase's object mask (H, W) bool in the grounding frame, or a failure reason string."""

    def masks(self, image: np.ndarray, phrases: list[str]) -> list[np.ndarray | str]: ...


@runtime_checkable
class Propagator(Protocol):
    """Masks of K objects through a sequence of frames.

    `frames` yields (H, W, 3) uint8 frames in time order, the grounding frame first; `first_masks` is (K, H, W) bool,
    the objects' masks in that first frame. Yields one (K, H, W) bool array per frame, the first frame included;
    an object not visible in a frame has an empty mask there.
    """

    def propagate(self, frames: Iterable[np.ndarray], first_masks: np.ndarray) -> Iterator[np.ndarray]: ...


class GroundAndSegment:
    """The default FirstFrameMasker: ground every phrase to a box, then segment all boxes in one call."""

    def __init__(self, grounder: Grounder, segmenter: Segmenter) -> None:
        self.grounder = grounder
        self.segmenter = segmenter

    def masks(self, image: np.ndarray, phrases: list[str]) -> list[np.ndarray | str]:
        if not phrases:
            return []
        detections = self.grounder.ground(image, phrases)
        if len(detections) != len(phrases):
            raise RuntimeError(
                f"{type(self.grounder).__name__} returned {len(detections)} detections for {len(phrases)} phrases"
            )
        found = [i for i, detection in enumerate(detections) if detection is not None]
        results: list[np.ndarray | str] = [NOT_GROUNDED] * len(phrases)
        if found:
            boxes = np.array([detections[i].box for i in found], dtype=np.float64)
            masks = self.segmenter.segment(image, boxes)
            if masks.shape != (len(found), *image.shape[:2]):
                expected = (len(found), *image.shape[:2])
                raise RuntimeError(
                    f"{type(self.segmenter).__name__} returned masks {masks.shape}, expected {expected}"
                )
            for i, mask in zip(found, masks):
                results[i] = mask if mask.any() else EMPTY_MASK
        return results


# ---- helpers shared by the transformers-backed components -------------------------------------------------------


def resolve_device(device: str | None) -> Any:
    """A torch device: the given one, else CUDA when available, else CPU."""
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str | None) -> Any:
    """torch dtype from a name of `pite.core.loading.DTYPE_NAMES`; None -> float32."""
    from pite.core.loading import torch_dtype

    return torch_dtype(dtype or "float32")


def load_checkpoint(load: Any, checkpoint: str | os.PathLike, what: str, **kwargs: Any) -> Any:
    """`load(checkpoint, **kwargs)` (a `from_pretrained`), with an error that says which component failed and why."""
    try:
        return load(os.fspath(checkpoint), **kwargs)
    except (OSError, ValueError, KeyError) as error:
        raise OSError(
            f"could not load the {what} from {os.fspath(checkpoint)!r}: {error}. Give a local folder in "
            "save_pretrained layout, or a hub id that is already in the local Hugging Face cache."
        ) from error
