"""Random access to a video's source frames, and which frames an event's tracking looks at.

The processor reads only the N sampled frames; the annotator needs the frames of each event at a tracking rate,
so it keeps its own decord reader (decord seeks with `get_batch`, so an event in the middle of a long video does
not decode the whole stream). Frames are handed out in chunks, never all at once: an event of a minute at 1080p
would not fit in memory as one array.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from pite.processing.video_reading_pite import VideoInputError

# Frames decoded per decord call while streaming an event.
DECODE_CHUNK = 16


class VideoFrames:
    """An opened video: frame count, per-frame start times, size, and chunked decoding.

    Attributes:
        path: the file.
        num_frames: T, source frames.
        timestamps: (T,) float64 start time of each frame in seconds.
        duration: end time of the last frame (seconds), T / fps for constant frame rates.
        fps: average frame rate.
        width, height: frame size in pixels.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        try:
            import decord
        except ImportError as error:
            raise ImportError("the annotator reads videos with decord (`pip install decord`)") from error
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"video file not found: {self.path!r}")
        try:
            self._reader = decord.VideoReader(self.path, num_threads=1)
        except (RuntimeError, decord.DECORDError) as error:
            raise VideoInputError(
                f"could not open video {self.path!r}: corrupt, truncated or not a video ({error})"
            ) from error
        self.num_frames = len(self._reader)
        if self.num_frames == 0:
            raise VideoInputError(f"video {self.path!r} has no frames")
        times = np.asarray(self._reader.get_frame_timestamp(list(range(self.num_frames))), dtype=np.float64)
        self.timestamps = times[:, 0]
        self.duration = float(times[-1, 1])
        self.fps = float(self._reader.get_avg_fps())
        first = self._reader[0].asnumpy()
        self.height, self.width = int(first.shape[0]), int(first.shape[1])

    def read(self, indices: list[int] | np.ndarray) -> np.ndarray:
        """(len(indices), H, W, 3) uint8 RGB frames."""
        indices = [int(i) for i in indices]
        if any(not 0 <= i < self.num_frames for i in indices):
            raise IndexError(f"{self.path}: frame indices {indices} outside [0, {self.num_frames})")
        try:
            return self._reader.get_batch(indices).asnumpy()
        except Exception as error:  # decord raises its own error types for broken streams
            raise VideoInputError(f"could not decode frames {indices[:3]}... of {self.path!r}: {error}") from error

    def iter_frames(self, indices: list[int] | np.ndarray, chunk: int = DECODE_CHUNK) -> Iterator[np.ndarray]:
        """The frames at `indices`, one (H, W, 3) uint8 array at a time, decoded `chunk` at a time."""
        indices = list(indices)
        for begin in range(0, len(indices), chunk):
            yield from self.read(indices[begin : begin + chunk])


def nearest_frame(timestamps: np.ndarray, seconds: float) -> int:
    """Index of the frame whose start time is nearest to `seconds` (the earlier one on a tie)."""
    return int(np.argmin(np.abs(np.asarray(timestamps) - seconds)))


def event_frame_window(
    timestamps: np.ndarray, start: float, end: float, video_duration: float
) -> tuple[int, int] | None:
    """(first, last) source frames of an event [start, end] seconds, inclusive; None if it starts after the video.

    Each bound is the frame nearest in time. An end past the video is taken as the last frame (annotation noise,
    e.g. ActivityNet end times beyond the file): the caption's times are written unchanged, only tracking stops
    where the video does.
    """
    if start > video_duration:
        return None
    first = nearest_frame(timestamps, start)
    last = nearest_frame(timestamps, min(end, video_duration))
    return first, max(first, last)


def tracking_frames(first: int, last: int, sampled: np.ndarray, fps: float, track_fps: float | None) -> np.ndarray:
    """Sorted unique source frames to propagate masks over for the window [first, last].

    Always the window's first frame (the grounding frame) and every sampled frame inside the window (the only frames
    the output needs), plus a regular grid of about `track_fps` frames a second so that the propagator never has to
    bridge much more than 1 / track_fps seconds; `track_fps=None` (or >= fps) takes every source frame.
    """
    if track_fps is not None and not track_fps > 0:
        raise ValueError(f"track_fps must be > 0 (or None for every frame), got {track_fps}")
    inside = sampled[(sampled >= first) & (sampled <= last)]
    if track_fps is None or track_fps >= fps:
        grid = np.arange(first, last + 1)
    else:
        step = max(1, int(round(fps / track_fps)))
        grid = np.arange(first, last + 1, step)
    return np.unique(np.concatenate([[first], grid, inside]).astype(np.int64))
