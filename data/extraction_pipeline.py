"""Feature extraction as a pipeline: media files decoded and preprocessed in DataLoader workers while the main process
runs the vision tower on the previous batch.

`load_batches` yields, per batch of file keys, each file's CLIP-normalised pixels (or the error that made it
unreadable), read exactly as training reads them (`media_pixels`). With `num_workers=0` the files are read
in the calling process, one batch after the other; with workers, `torch.utils.data.DataLoader` reads up to
`2 * num_workers` batches ahead, in order, so the features do not depend on the number of workers (tested).
`ExtractionTimes` says where the time went: reading (decode + preprocess, summed over files, in whichever process
read them), waiting for a batch (the main process idle), and the tower's forward passes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from .records import IMAGE_EXTENSIONS


def media_pixels(processor: Any, path: str, kind: str) -> torch.Tensor:
    """(F, 3, H, W) CLIP-normalised frames of one file: F = N sampled frames of a video, F = 1 for an image.

    Training without a cache (`ExampleFeaturizer`) reads its frames here too, so cached features are exactly those.
    """
    if kind == "image":
        with Image.open(path) as image:
            return processor(images=[image.convert("RGB")], return_tensors="pt")["pixel_values"]
    return processor(videos=[path], return_tensors="pt")["pixel_values_videos"][0]


@dataclass
class LoadedMedia:
    """One media file as read for extraction: `pixels` (F, 3, H, W) float32, or the `error` that made it unreadable.

    `read_s` is the time spent decoding and preprocessing it."""

    key: str
    pixels: torch.Tensor | None
    error: Exception | None
    read_s: float


@dataclass
class ExtractionTimes:
    """Where an extraction's time went (seconds; `read_s` summed over files, overlapped with the tower in workers)."""

    files: int = 0
    frames: int = 0
    read_s: float = 0.0
    wait_s: float = 0.0
    tower_s: float = 0.0
    wall_s: float = 0.0

    @property
    def frames_per_s(self) -> float:
        """Frames through the tower per second of wall time (0 before anything ran)."""
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self) -> str:
        return (
            f"{self.frames} frames of {self.files} file(s) in {self.wall_s:.1f} s: {self.frames_per_s:.1f} "
            f"frames/s (reading {self.read_s:.1f} s, waiting for reads {self.wait_s:.1f} s, "
            f"tower {self.tower_s:.1f} s)"
        )


def read_media(processor: Any, media_dir: str, key: str) -> LoadedMedia:
    """The pixels of file `key` under `media_dir` as training reads them; unreadable files give their error."""
    from pite.processing import VideoInputError

    path = os.path.join(media_dir, key)
    kind = "image" if path.lower().endswith(IMAGE_EXTENSIONS) else "video"
    start = time.perf_counter()
    try:
        pixels, error = media_pixels(processor, path, kind), None
    except (VideoInputError, OSError, ValueError) as raised:
        pixels, error = None, raised
    return LoadedMedia(key, pixels, error, time.perf_counter() - start)


class _Batches(torch.utils.data.Dataset):
    """Item i: the `LoadedMedia` of every file of batch i."""

    def __init__(self, processor: Any, media_dir: str, batches: Sequence[Sequence[str]]) -> None:
        self.processor, self.media_dir, self.batches = processor, media_dir, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> list[LoadedMedia]:
        return [read_media(self.processor, self.media_dir, key) for key in self.batches[index]]


def _as_is(batch: list[LoadedMedia]) -> list[LoadedMedia]:
    return batch


def _one_thread(worker_id: int) -> None:
    # Readers are single-threaded; torch's default pool in every worker would compete with the tower for the cores.
    torch.set_num_threads(1)


def load_batches(
    processor: Any,
    media_dir: str,
    batches: Sequence[Sequence[str]],
    num_workers: int = 0,
    times: ExtractionTimes | None = None,
) -> Iterator[list[LoadedMedia]]:
    """The `LoadedMedia` of each batch of `batches`, in order, read by `num_workers` DataLoader worker processes
    (0: in this process). `times`, when given, accumulates `read_s`, `wait_s` and `files`."""
    if not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be an integer >= 0, got {num_workers!r}")
    dataset = _Batches(processor, media_dir, batches)
    if num_workers == 0:
        source = (dataset[index] for index in range(len(dataset)))
    else:
        source = iter(
            torch.utils.data.DataLoader(
                dataset,
                batch_size=None,
                shuffle=False,
                num_workers=num_workers,
                collate_fn=_as_is,
                worker_init_fn=_one_thread,
                prefetch_factor=2,
            )
        )
    while True:
        start = time.perf_counter()
        try:
            loaded = next(source)
        except StopIteration:
            return
        if times is not None:
            times.wait_s += time.perf_counter() - start
            times.read_s += sum(item.read_s for item in loaded)
            times.files += len(loaded)
        yield loaded
