"""From an object's masks to its P key trajectories: key-point selection, following, resampling.

Coordinates here are continuous pixel coordinates `(x, y)`: pixel (row r, column c) covers [c, c + 1) x [r, r + 1)
and its centre is (c + 0.5, r + 0.5). Normalised output coordinates are `(x / W, y / H)` (DESIGN.md).

**Selection.** The paper tracks every point of the first frame, keeps the tracks inside the mask and reduces them
with k-means++ to P = 3. Here the reduction happens on the first frame: k-means++ (seeded D^2 sampling, then Lloyd
iterations; `kmeans_pp`, which also builds the synthetic world's ground truth) over the centres of the mask's
pixels gives P key points, ordered top-to-bottom then left-to-right.

**Following.** The default propagator (SAM2 video) gives a mask per frame, not point correspondences, so each key
point is carried by the motion of its mask: frame t's mask is registered to the grounding frame's mask by a
similarity without rotation, `p -> a + d + s (p - a)` (a: the reference centroid), and every key point moves with it.
- The translation `d` is solved so that the centroid of the *part of the reference that stays inside the frame*
  maps onto the centroid of frame t's mask. A plain centroid difference would drag the key points inward as an
  object leaves the frame (the visible part's centroid moves less than the object); restricting the reference to
  what the frame can still show removes that bias exactly for translating objects. The restriction depends on `d`,
  so `d` is found by fixed-point iteration (monotone, a few steps).
- The scale `s` (optional, on by default: objects approaching or leaving the camera) is the square root of the
  area ratio of the two masks, measured only when neither mask touches the frame's edge; while the object is cut
  off by the edge the last measured scale is kept (a cut-off mask's area says nothing about scale, and fitting
  scale and translation together to a cut-off mask is ambiguous), and an object cut off in its grounding frame
  keeps scale 1.
- Registration is always against the grounding frame, never chained frame to frame, so errors do not accumulate.
What it cannot see: rotation and non-rigid motion (the key points keep their place relative to the mask's centroid
and extent), and partial occlusion by another object (the visible part's centroid shifts; key points that land
off the mask are then marked absent, but the others shift with it). A dense point tracker would remove these
limits; `Propagator` is the place to plug one.

**Visibility.** A key point counts as visible in a frame when it is inside the frame and the pixel under it and its
neighbours within `visibility_margin` pixels all belong to the mask: points on the mask's border, where
segmentation and colour are least reliable, and points of an occluded or vanished part become -1.

**Resampling.** Output frames are the N frames sampled from the whole video (`np.linspace(0, T - 1, N)`
truncated, as the processor); the tracking frames always include every sampled frame of the event's window, so
resampling is a lookup; a sampled frame outside the window, or where the point is not visible, gets -1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Registration uses at most this many reference pixels (an even subsample): the centroid needs no more.
MAX_REGISTRATION_PIXELS = 50_000


def kmeans_pp(points: np.ndarray, k: int, rng: np.random.Generator, max_iterations: int = 100) -> np.ndarray:
    """(k, 2) cluster centres of `points` (M, 2): k-means++ seeding (D^2 sampling) then Lloyd iterations.

    Centres are returned sorted top-to-bottom then left-to-right (by y, then x), so that key point p of different
    objects sits at a comparable place. Raises ValueError if there are fewer distinct points than `k`.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"kmeans_pp: points must have shape (M, 2), got {points.shape}")
    if len(np.unique(points, axis=0)) < k:
        raise ValueError(f"kmeans_pp: need at least k={k} distinct points, got {len(np.unique(points, axis=0))}")
    centres = [points[int(rng.integers(len(points)))]]
    nearest = ((points - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        choice = int(rng.choice(len(points), p=nearest / nearest.sum()))
        centres.append(points[choice])
        nearest = np.minimum(nearest, ((points - points[choice]) ** 2).sum(axis=1))
    centres_array = np.stack(centres)
    assignment = None
    for _ in range(max_iterations):
        distances = ((points[:, None, :] - centres_array[None]) ** 2).sum(axis=2)
        new_assignment = distances.argmin(axis=1)
        if assignment is not None and np.array_equal(new_assignment, assignment):
            break
        assignment = new_assignment
        for j in range(k):
            members = points[assignment == j]
            if len(members):  # an empty cluster keeps its centre
                centres_array[j] = members.mean(axis=0)
    order = np.lexsort((centres_array[:, 0], centres_array[:, 1]))
    return centres_array[order]


def mask_pixel_centres(mask: np.ndarray) -> np.ndarray:
    """(M, 2) float64 `(x, y)` centres of the True pixels of a (H, W) bool mask, row-major order."""
    rows, cols = np.nonzero(mask)
    return np.stack([cols + 0.5, rows + 0.5], axis=1).astype(np.float64)


def select_key_points(mask: np.ndarray, num_points: int, rng: np.random.Generator) -> np.ndarray:
    """(P, 2) key points of an object mask (H, W) bool: k-means++ centres of its pixel centres, pixel coordinates.

    Raises ValueError when the mask has fewer than `num_points` pixels.
    """
    pixels = mask_pixel_centres(mask)
    if len(pixels) < num_points:
        raise ValueError(f"mask has {len(pixels)} pixels, fewer than the {num_points} key points asked for")
    return kmeans_pp(pixels, num_points, rng)


@dataclass(frozen=True)
class MaskMotion:
    """A similarity without rotation, `p -> anchor + translation + scale * (p - anchor)`, in pixels."""

    anchor: np.ndarray
    translation: np.ndarray
    scale: float

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map points (..., 2) from the reference frame to the current frame."""
        return self.anchor + self.translation + self.scale * (np.asarray(points, dtype=np.float64) - self.anchor)


def register_mask(
    reference_pixels: np.ndarray,
    mask: np.ndarray,
    scale: float | None = None,
    max_iterations: int = 50,
    tolerance: float = 1e-4,
) -> MaskMotion | None:
    """The motion taking the reference mask to `mask`, frame-border aware (see the module docstring).

    Args:
        reference_pixels: (M, 2) pixel centres of the reference (grounding-frame) mask.
        mask: (H, W) bool, the object's mask in the current frame.
        scale: the scale to use; None measures it as sqrt(area ratio), which is only meaningful when neither mask
            is cut by the frame's edge (the caller decides: `KeyPointFollower`).
        max_iterations, tolerance: of the translation's fixed-point iteration, in pixels.

    Returns:
        the motion, or None when the current mask is empty or no part of the moved reference stays in the frame.
    """
    height, width = mask.shape
    current = mask_pixel_centres(mask)
    if len(current) == 0 or len(reference_pixels) == 0:
        return None
    if len(reference_pixels) > MAX_REGISTRATION_PIXELS:
        reference_pixels = reference_pixels[:: int(np.ceil(len(reference_pixels) / MAX_REGISTRATION_PIXELS))]
    anchor = reference_pixels.mean(axis=0)
    target = current.mean(axis=0)
    if scale is None:
        scale = float(np.sqrt(len(current) / len(reference_pixels)))
    translation = target - anchor
    for _ in range(max_iterations):
        moved = anchor + translation + scale * (reference_pixels - anchor)
        inside = (moved[:, 0] >= 0) & (moved[:, 0] < width) & (moved[:, 1] >= 0) & (moved[:, 1] < height)
        if not inside.any():
            return None
        new_translation = target - anchor - scale * (reference_pixels[inside].mean(axis=0) - anchor)
        change = float(np.abs(new_translation - translation).max())
        translation = new_translation
        if change < tolerance:
            break
    return MaskMotion(anchor=anchor, translation=translation, scale=float(scale))


def touches_frame_edge(mask: np.ndarray) -> bool:
    """Whether a (H, W) bool mask has a pixel in the first/last row or column (the object may be cut off)."""
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def points_visible(points: np.ndarray, mask: np.ndarray, margin: int) -> np.ndarray:
    """(P,) bool: each point (P, 2) is in the frame and the (2 margin + 1)^2 pixels around it are all in `mask`."""
    height, width = mask.shape
    visible = np.zeros(len(points), dtype=bool)
    for index, (x, y) in enumerate(points):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        col, row = int(np.floor(x)), int(np.floor(y))
        if col - margin < 0 or row - margin < 0 or col + margin >= width or row + margin >= height:
            continue
        visible[index] = bool(mask[row - margin : row + margin + 1, col - margin : col + margin + 1].all())
    return visible


class KeyPointFollower:
    """Carries an object's P key points from its grounding-frame mask to its mask in later frames.

    Call `locate` in time order: the scale measured in a frame where the object is whole is carried over to frames
    where the frame's edge cuts it off.

    Args:
        reference_mask: (H, W) bool, the object's mask in the grounding frame.
        key_points: (P, 2) key points in that frame (pixels), e.g. from `select_key_points`.
        estimate_scale: fit the mask's scale change as well as its translation.
        visibility_margin: pixels around a key point that must belong to the mask for it to count as visible.
    """

    def __init__(
        self,
        reference_mask: np.ndarray,
        key_points: np.ndarray,
        estimate_scale: bool = True,
        visibility_margin: int = 1,
    ) -> None:
        if reference_mask.ndim != 2 or reference_mask.dtype != bool:
            raise ValueError(
                f"reference_mask must be a (H, W) bool array, got {reference_mask.shape} {reference_mask.dtype}"
            )
        if visibility_margin < 0:
            raise ValueError(f"visibility_margin must be >= 0, got {visibility_margin}")
        self.shape = reference_mask.shape
        self.reference_pixels = mask_pixel_centres(reference_mask)
        self.key_points = np.asarray(key_points, dtype=np.float64)
        self.estimate_scale = estimate_scale and not touches_frame_edge(reference_mask)
        self.visibility_margin = visibility_margin
        self.scale = 1.0

    def locate(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Key points in the next frame given the object's mask there (H, W) bool.

        Returns (points (P, 2) float64 pixels, NaN where the mask is empty or unregistrable; visible (P,) bool).
        """
        if mask.shape != self.shape:
            raise ValueError(f"mask shape {mask.shape} differs from the reference mask's {self.shape}")
        measure = self.estimate_scale and not touches_frame_edge(mask)
        motion = register_mask(self.reference_pixels, mask, scale=None if measure else self.scale)
        if motion is None:
            return np.full_like(self.key_points, np.nan), np.zeros(len(self.key_points), dtype=bool)
        self.scale = motion.scale
        points = motion.apply(self.key_points)
        return points, points_visible(points, mask, self.visibility_margin)


def sampled_trajectory(
    sampled_indices: np.ndarray,
    located: dict[int, tuple[np.ndarray, np.ndarray]],
    width: int,
    height: int,
    num_points: int,
) -> np.ndarray:
    """(P, N, 2) float64 normalised trajectory over the N sampled frames, -1 where absent.

    Args:
        sampled_indices: (N,) source-frame index of each sampled frame (may repeat when the video has < N frames).
        located: source frame -> (points (P, 2) pixels, visible (P,) bool) for the frames that were tracked.
        width, height: frame size in pixels, for normalisation.
        num_points: P.
    """
    trajectory = np.full((num_points, len(sampled_indices), 2), -1.0)
    scale = np.array([width, height], dtype=np.float64)
    for position, frame in enumerate(np.asarray(sampled_indices).tolist()):
        if frame not in located:
            continue
        points, visible = located[frame]
        trajectory[visible, position] = points[visible] / scale
    return trajectory
