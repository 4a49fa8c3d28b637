"""Trajectory accuracy: masked L1 and PCK (share of points within 5% / 10% of the frame diagonal).

Points are normalised `(x, y)` image coordinates (DESIGN.md). A target point is absent, and excluded from every
number, when any of its coordinates is `-1`: the training loss's rule, taken from it
(`pite.modeling_pite.losses_pite.valid_point_mask`), so the L1 here is the loss's L1 on held-out data.

- `L1`: mean over valid points of `|dx| + |dy|` in normalised units (the training loss's per-point distance).
- `PCK@t`: percent of valid points whose Euclidean error is at most `t` times the frame diagonal. Errors are measured
  in pixel-proportional units: with frame `width` and `height`, `dx` is scaled by `width` and `dy` by `height` and
  the diagonal is `sqrt(width^2 + height^2)`; without them the frame is taken as square and the diagonal of the
  normalised frame is `sqrt(2)`. Only the aspect ratio matters, so `width=16, height=9` equals `1920 x 1080`.

Usage:
    >>> import numpy as np
    >>> targets = np.array([[0.5, 0.5], [-1, -1]])
    >>> round(trajectory_scores(np.array([[0.5, 0.55], [0.9, 0.9]]), targets)["L1"], 6)
    0.05
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from pite.modeling_pite.losses_pite import ABSENT_COORDINATE, valid_point_mask

DEFAULT_THRESHOLDS = (0.05, 0.10)


def _frame_scale(size: float | Sequence[float] | np.ndarray | None, name: str, batch: int, ndim: int) -> np.ndarray:
    """Width or height as an array broadcastable over the point axes: a scalar, or one value per sample (axis 0)."""
    if size is None:
        return np.ones((1,) * ndim)
    values = np.asarray(size, dtype=np.float64)
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"{name} must be positive and finite, got {size!r}")
    if values.ndim == 0:
        return values.reshape((1,) * ndim)
    if values.shape != (batch,):
        raise ValueError(f"{name} must be a scalar or hold one value per sample ({batch}), got shape {values.shape}")
    return values.reshape((batch,) + (1,) * (ndim - 1))


def trajectory_scores(
    predictions: np.ndarray,
    targets: np.ndarray,
    width: float | Sequence[float] | None = None,
    height: float | Sequence[float] | None = None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> dict[str, float]:
    """Masked L1 and PCK of predicted points against target points.

    Args:
        predictions: (..., 2) predicted `(x, y)`, e.g. (B, P, N, 2) trajectories; must be finite.
        targets: same shape; `-1` marks absent points.
        width, height: frame size (scalars, or one per sample along axis 0); both or neither.
        thresholds: PCK thresholds as fractions of the diagonal.

    Returns:
        `{"L1": ..., "PCK@0.05": percent, "PCK@0.1": percent, "num_points": valid points}`.
    """
    predictions = np.asarray(predictions, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if predictions.shape != targets.shape:
        raise ValueError(f"predictions {predictions.shape} and targets {targets.shape} must have the same shape")
    if predictions.ndim == 0 or predictions.shape[-1] != 2:
        raise ValueError(f"points must have a last axis of size 2 (x, y), got shape {predictions.shape}")
    if (width is None) != (height is None):
        raise ValueError("give both width and height, or neither")
    if not np.all(np.isfinite(targets)):
        raise ValueError("targets contain NaN or infinite coordinates (absent points are marked -1)")
    valid = valid_point_mask(torch.from_numpy(targets), absent_coordinate=ABSENT_COORDINATE).numpy()
    if not valid.any():
        raise ValueError("no valid target point: every target is absent (-1)")
    if not np.all(np.isfinite(predictions[valid])):
        raise ValueError("predictions contain NaN or infinite coordinates at valid target points")

    if predictions.ndim == 1:  # a single point
        predictions, targets, valid = predictions[None], targets[None], valid[None]
    error = predictions - targets
    point_axes = predictions.ndim - 1
    scale_x = _frame_scale(width, "width", predictions.shape[0], point_axes)
    scale_y = _frame_scale(height, "height", predictions.shape[0], point_axes)
    distance = np.sqrt((error[..., 0] * scale_x) ** 2 + (error[..., 1] * scale_y) ** 2)
    diagonal = np.sqrt(scale_x**2 + scale_y**2)
    relative = (distance / diagonal)[valid]

    scores = {"L1": float(np.abs(error).sum(axis=-1)[valid].mean())}
    for threshold in thresholds:
        scores[f"PCK@{threshold:g}"] = 100.0 * float(np.mean(relative <= threshold))
    scores["num_points"] = int(valid.sum())
    return scores
