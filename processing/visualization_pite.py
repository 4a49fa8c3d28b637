"""Drawing trajectories over the sampled frames: a PNG contact sheet and an animated GIF (PIL only).

Predictions are drawn as filled circles with solid trails; ground truth as hollow squares with thin trails, each
point of each object in its own colour. Absent points (-1 normalised, or NaN) are not drawn and break the trail.
The `save_*` functions write with PIL straight to the path they are given; package code that must never leave a
half-written file (`pite.demo`) passes them a temporary path through `pite.core.file_writing.atomic_write`.

This file is Hub remote code: it imports only numpy and PIL.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240)]


def _as_objects(trajectories: Any, num_frames: int, name: str) -> list[np.ndarray]:
    """One (P, N, 2) array or a sequence of them -> list of float arrays (P, N, 2)."""
    if trajectories is None:
        return []
    if isinstance(trajectories, np.ndarray) or (
        isinstance(trajectories, Sequence) and len(trajectories) > 0 and np.ndim(trajectories[0]) == 2
    ):
        trajectories = [trajectories]
    objects = []
    for index, trajectory in enumerate(trajectories):
        array = np.asarray(trajectory, dtype=np.float64)
        if array.ndim != 3 or array.shape[1:] != (num_frames, 2):
            raise ValueError(
                f"{name}[{index}]: expected a trajectory of shape (P, {num_frames}, 2) for {num_frames} frames, "
                f"got {array.shape}"
            )
        objects.append(array)
    return objects


def _check_frames(frames: Any) -> np.ndarray:
    array = np.asarray(frames)
    if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
        raise ValueError(f"frames must be a uint8 array (N, H, W, 3), got shape {array.shape} dtype {array.dtype}")
    return array


def _normalised(points: np.ndarray, coordinates: str, width: int, height: int) -> np.ndarray:
    """Points (..., 2) -> normalised, NaN where absent."""
    if coordinates == "pixels":
        points = points / np.asarray([width, height], dtype=np.float64)
    elif coordinates != "normalized":
        raise ValueError(f"coordinates must be 'normalized' or 'pixels', got {coordinates!r}")
    else:
        points = np.where((points == -1.0).all(axis=-1, keepdims=True), np.nan, points)
    return points


def render_frames(
    frames: Any,
    predicted: Any = None,
    ground_truth: Any = None,
    width: int = 256,
    trail: int = 8,
    coordinates: str = "normalized",
) -> list[Image.Image]:
    """Draw trajectories on every frame.

    Args:
        frames: uint8 (N, H, W, 3), the N sampled frames at their original resolution.
        predicted, ground_truth: a trajectory (P, N, 2) or a list of them (one per object), normalised (x, y) with
            -1 where absent, or pixels of the original frames (NaN where absent) with `coordinates="pixels"`.
        width: display width of each frame; height keeps the aspect ratio.
        trail: how many previous frames each point's trail spans.

    Returns:
        N PIL images (RGB) of size (width, round(H * width / W)).
    """
    frames = _check_frames(frames)
    num_frames, source_height, source_width = frames.shape[:3]
    height = max(1, round(source_height * width / source_width))
    # Object k's point p has the same colour in ground truth and prediction; the marker style tells them apart.
    layers = [
        (object_index, _normalised(o, coordinates, source_width, source_height), style)
        for objects, style in (
            (_as_objects(ground_truth, num_frames, "ground_truth"), "truth"),
            (_as_objects(predicted, num_frames, "predicted"), "prediction"),
        )
        for object_index, o in enumerate(objects)
    ]
    radius = max(2, width // 64)
    images = []
    for i in range(num_frames):
        image = Image.fromarray(frames[i]).resize((width, height), Image.BILINEAR)
        draw = ImageDraw.Draw(image)
        for object_index, trajectory, style in layers:
            for point_index in range(trajectory.shape[0]):
                colour = PALETTE[(object_index * trajectory.shape[0] + point_index) % len(PALETTE)]
                xy = trajectory[point_index] * np.asarray([width, height])
                for j in range(max(0, i - trail), i):
                    if np.isfinite(xy[j]).all() and np.isfinite(xy[j + 1]).all():
                        draw.line([tuple(xy[j]), tuple(xy[j + 1])], fill=colour, width=1 if style == "truth" else 2)
                if np.isfinite(xy[i]).all():
                    x, y = xy[i]
                    box = [x - radius, y - radius, x + radius, y + radius]
                    if style == "truth":
                        draw.rectangle(box, outline=colour, width=2)
                    else:
                        draw.ellipse(box, fill=colour, outline=(0, 0, 0))
        images.append(image)
    return images


def save_contact_sheet(
    frames: Any,
    path: str | os.PathLike,
    predicted: Any = None,
    ground_truth: Any = None,
    columns: int = 10,
    frame_width: int = 160,
    timestamps: Sequence[float] | None = None,
    coordinates: str = "normalized",
) -> str:
    """Write a PNG grid of all N frames with the trajectories drawn; each tile is labelled with its frame number
    (and time in seconds if `timestamps` are given). Returns the path written."""
    images = render_frames(frames, predicted, ground_truth, width=frame_width, coordinates=coordinates)
    if timestamps is not None and len(timestamps) != len(images):
        raise ValueError(f"got {len(timestamps)} timestamps for {len(images)} frames")
    rows = -(-len(images) // columns)
    tile_width, tile_height = images[0].size
    sheet = Image.new("RGB", (columns * tile_width, rows * tile_height), (255, 255, 255))
    for i, image in enumerate(images):
        label = f"{i}" + (f" {timestamps[i]:.1f}s" if timestamps is not None else "")
        ImageDraw.Draw(image).text((3, 2), label, fill=(255, 255, 255), stroke_width=1, stroke_fill=(0, 0, 0))
        sheet.paste(image, ((i % columns) * tile_width, (i // columns) * tile_height))
    return _save(path, lambda target: sheet.save(target, format="PNG"))


def save_trajectory_gif(
    frames: Any,
    path: str | os.PathLike,
    predicted: Any = None,
    ground_truth: Any = None,
    frame_width: int = 256,
    frame_duration_ms: int = 100,
    coordinates: str = "normalized",
) -> str:
    """Write an animated, looping GIF of the N frames with trajectories and trails. Returns the path written."""
    images = render_frames(frames, predicted, ground_truth, width=frame_width, coordinates=coordinates)

    def write(target: str) -> None:
        images[0].save(
            target, format="GIF", save_all=True, append_images=images[1:], duration=frame_duration_ms, loop=0
        )

    return _save(path, write)


def _save(path: str | os.PathLike, write: Callable[[str], None]) -> str:
    """Create the parent folder of `path` and write it; returns the path as a string."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    write(path)
    return path
