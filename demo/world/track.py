"""Ground-truth key-point trajectories, as PiTe's annotation pipeline would produce them.

The pipeline grounds an object, tracks its points and reduces them with k-means++ to P key trajectories. Here the
object's visible pixels in its first visible frame are clustered (seeded k-means++ with Lloyd refinement, the
annotation pipeline's own `kmeans_pp`), and the P centroids move rigidly with the object (shapes only translate).
A key point counts as visible in a frame when the pixel containing it and its 8 neighbours show the object: absent,
outside or at the edge of the frame, covered by (or bordering) another shape gives -1.
"""

from __future__ import annotations

import numpy as np

from pite.annotation.keypoints import kmeans_pp
from pite.processing.video_reading_pite import sample_frame_indices

from .scene import Event, VideoScene

# A first frame with fewer visible pixels than this is too small to cluster (a sliver at the edge or under another
# shape); the key points come from the first frame that shows more of the object.
MIN_CLUSTER_PIXELS = 8


def object_key_points(
    scene: VideoScene, labels: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Key points of every object in every source frame.

    Args:
        scene: the video's ground truth.
        labels: (T, H, W) int8 object index per pixel from `render_labels`.
        rng: seeds k-means++.

    Returns:
        points: (K, T, P, 2) float64 normalised (x, y), NaN where the object is absent from the video.
        visible: (K, T, P) bool, True where the key point's pixel and its 8 neighbours show its object.
    """
    cfg = scene.config
    num_objects, num_source_frames = len(scene.objects), scene.num_source_frames
    height, width = cfg.height, cfg.width
    points = np.full((num_objects, num_source_frames, cfg.num_key_points, 2), np.nan)
    visible = np.zeros((num_objects, num_source_frames, cfg.num_key_points), dtype=bool)
    scale = np.array([width, height], dtype=np.float64)
    for obj in scene.objects:
        counts = (labels == obj.index).reshape(num_source_frames, -1).sum(axis=1)
        frames = np.flatnonzero(counts >= max(MIN_CLUSTER_PIXELS, cfg.num_key_points))
        if len(frames) == 0:
            continue  # never visible enough to ground: every key point stays absent
        first = int(frames[0])
        rows, cols = np.nonzero(labels[first] == obj.index)
        pixels = np.stack([cols + 0.5, rows + 0.5], axis=1)
        centres = kmeans_pp(pixels, cfg.num_key_points, rng)
        offsets = centres - scene.centres[obj.index, first] * scale  # (P, 2) pixels, fixed: rigid motion
        pixel_points = scene.centres[obj.index][:, None, :] * scale + offsets[None]  # (T, P, 2)
        points[obj.index] = pixel_points / scale
        visible[obj.index] = _neighbourhood_shows(labels, pixel_points, obj.index)
    return points, visible


def _neighbourhood_shows(labels: np.ndarray, pixel_points: np.ndarray, index: int) -> np.ndarray:
    """(T, P) bool: the pixel under each point (T, P, 2) and its 8 neighbours, all inside the frame, show `index`.

    Requiring the neighbours too keeps points off occlusion borders and the frame edge, where yuv420p's 2x2 chroma
    blocks blend the colours of two objects and neither the decoded colour nor a tracker would be reliable.
    """
    num_source_frames, height, width = labels.shape
    padded = np.pad(labels, ((0, 0), (1, 1), (1, 1)), constant_values=-1)  # outside the frame shows nothing
    finite = ~np.isnan(pixel_points).any(axis=2)
    cells = np.floor(np.where(finite[..., None], pixel_points, -1.0)).astype(np.int64)  # absent: off the frame
    cols, rows = cells[..., 0], cells[..., 1]
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    cols, rows = np.where(inside, cols, 0) + 1, np.where(inside, rows, 0) + 1
    frames = np.arange(num_source_frames)[:, None]
    shown = inside.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            shown &= padded[frames, rows + dy, cols + dx] == index
    return shown


def event_trajectory(
    scene: VideoScene, points: np.ndarray, visible: np.ndarray, event: Event, num_frames: int | None = None
) -> np.ndarray:
    """(P, N, 2) trajectory of `event`'s object over the N sampled frames, -1 where not visible or not tracked.

    Tracking starts at the event's first frame; it stops at the event's last frame when
    `config.trajectory_window == "event"`, at the end of the video when it is "video".
    """
    num_frames = num_frames or scene.config.num_frames
    indices = sample_frame_indices(scene.num_source_frames, num_frames)
    tracked = indices >= event.start_frame
    if scene.config.trajectory_window == "event":
        tracked &= indices <= event.end_frame
    shown = visible[event.object_index][indices] & tracked[:, None]  # (N, P)
    trajectory = np.where(shown[..., None], points[event.object_index][indices], -1.0)
    return np.ascontiguousarray(trajectory.transpose(1, 0, 2))
