"""Reading videos and images into the N frames PiTe sees, plus the metadata post-processing needs.

A video is sampled at `np.linspace(0, T - 1, N)` rounded (first and last frame included; shorter videos repeat
frames). Files are read with decord by *seeking* to the sampled indices (`VideoReader.get_batch`), never by decoding
the whole stream. decord is imported lazily, inside a try block, so that this file loads as Hub remote code on
machines without decord (transformers' import check skips imports inside try blocks).

This file is Hub remote code: it imports only numpy and PIL, and nothing from its own package.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any, BinaryIO, Union

import numpy as np
from PIL import Image

# What `read_video` accepts: a path, the encoded bytes, a binary file object, decoded frames as a uint8
# array (T, H, W, 3), or a sequence of frames (PIL images or uint8 arrays (H, W, 3)).
VideoInput = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO, np.ndarray, "list[Image.Image]"]
ImageInput = Union[Image.Image, np.ndarray]


class VideoInputError(ValueError):
    """A video or image that cannot be used: corrupt, empty, or of an unsupported type, dtype or shape."""


@dataclass
class SampledVideo:
    """The N frames sampled from one video (or one image seen as a one-frame video).

    Attributes:
        frames: uint8 array (N, H, W, 3), RGB, in the video's original resolution.
        metadata: the processor's `video_metadata` entry: `fps`, `duration` (s), `num_source_frames`,
            `frame_indices` (list[int], length N), `timestamps` (list[float] s, length N), `width`, `height`.
            `fps`, `duration` and `timestamps` are None where the input carries no timing (decoded frames given
            without `fps`, images).
    """

    frames: np.ndarray
    metadata: dict[str, Any]


def sample_frame_indices(num_source_frames: int, num_frames: int) -> np.ndarray:
    """Indices of the N frames sampled from a video of T frames: `np.linspace(0, T - 1, N)` rounded.

    The first and last frames are always included; when T < N, frames repeat. Returns int64 array (N,).
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if num_source_frames < 1:
        raise VideoInputError(f"cannot sample frames from a video with {num_source_frames} frames")
    return np.rint(np.linspace(0, num_source_frames - 1, num_frames)).astype(np.int64)


def describe_input(source: Any) -> str:
    """A short human-readable name for a video/image input, used in error messages."""
    if isinstance(source, (str, os.PathLike)):
        return repr(os.fspath(source))
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    if isinstance(source, np.ndarray):
        return f"<array shape={source.shape} dtype={source.dtype}>"
    if hasattr(source, "read"):
        return f"<file object {getattr(source, 'name', type(source).__name__)!r}>"
    if isinstance(source, (list, tuple)):
        return f"<{type(source).__name__} of {len(source)} items>"
    return f"<{type(source).__name__}>"


def is_frame(item: Any) -> bool:
    """True for one decoded frame: a PIL image or a 3-D array (H, W, C)."""
    return isinstance(item, Image.Image) or (isinstance(item, np.ndarray) and item.ndim == 3)


def is_single_video(item: Any) -> bool:
    """True if `item` is one video (not a list of videos): a path, bytes, file object, 4-D array or frame list."""
    if isinstance(item, (str, os.PathLike, bytes, bytearray, memoryview, np.ndarray)) or hasattr(item, "read"):
        return True
    return isinstance(item, (list, tuple)) and len(item) > 0 and all(is_frame(frame) for frame in item)


def _frame_to_array(frame: Any, name: str) -> np.ndarray:
    """One frame (PIL image or uint8 array (H, W, 3)) -> uint8 array (H, W, 3)."""
    if isinstance(frame, Image.Image):
        return np.asarray(frame.convert("RGB"))
    if not isinstance(frame, np.ndarray):
        raise VideoInputError(f"{name}: expected a PIL image or a uint8 array (H, W, 3), got {type(frame).__name__}")
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise VideoInputError(f"{name}: expected a frame of shape (H, W, 3), got shape {frame.shape}")
    if frame.dtype != np.uint8:
        # Float frames are ambiguous ([0, 1] or [0, 255]): refuse rather than guess.
        raise VideoInputError(f"{name}: expected dtype uint8, got {frame.dtype}")
    if frame.shape[0] < 1 or frame.shape[1] < 1:
        raise VideoInputError(f"{name}: frame has an empty dimension, shape {frame.shape}")
    return frame


def _sample_decoded(frames: np.ndarray, num_frames: int, fps: float | None) -> SampledVideo:
    """Sample N frames from already-decoded frames (T, H, W, 3); timing only if `fps` is given."""
    num_source_frames = frames.shape[0]
    indices = sample_frame_indices(num_source_frames, num_frames)
    if fps is not None and not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    metadata = {
        "fps": float(fps) if fps is not None else None,
        "duration": num_source_frames / fps if fps is not None else None,
        "num_source_frames": int(num_source_frames),
        "frame_indices": indices.tolist(),
        "timestamps": (indices / fps).tolist() if fps is not None else None,
        "width": int(frames.shape[2]),
        "height": int(frames.shape[1]),
    }
    return SampledVideo(frames=np.ascontiguousarray(frames[indices]), metadata=metadata)


def _open_decord_reader(source: Any, name: str) -> Any:
    """A `decord.VideoReader` over a path, bytes or file object, with specific errors for bad input."""
    try:
        import decord
    except ImportError as error:  # only needed for encoded videos; decoded frames work without it
        raise ImportError("reading encoded videos needs decord (`pip install decord`)") from error
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"video file not found: {path!r}")
        uri: Any = path
    elif isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise VideoInputError(f"video {name} is empty (0 bytes)")
        uri = io.BytesIO(bytes(source))
    else:
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise VideoInputError(f"video {name}: file object must be opened in binary mode")
        if len(data) == 0:
            raise VideoInputError(f"video {name} is empty (0 bytes)")
        uri = io.BytesIO(bytes(data))
    try:
        reader = decord.VideoReader(uri, num_threads=1)
    except (RuntimeError, decord.DECORDError) as error:
        raise VideoInputError(
            f"could not open video {name}: corrupt, truncated, not a video, or without video frames ({error})"
        ) from error
    if len(reader) == 0:
        raise VideoInputError(f"video {name} has no frames")
    return reader


def read_video(source: VideoInput, num_frames: int, fps: float | None = None) -> SampledVideo:
    """Sample `num_frames` frames from one video.

    Args:
        source: a path, encoded bytes, a binary file object, a uint8 array (T, H, W, 3), or a non-empty sequence
            of frames (PIL images or uint8 arrays (H, W, 3), all the same size).
        num_frames: N, the number of frames to sample.
        fps: frame rate of *decoded* inputs (arrays, frame lists), used for timestamps and duration. Encoded
            inputs carry their own timing; passing `fps` for them is an error (it would be silently ignored).

    Returns:
        a `SampledVideo` with frames (N, H, W, 3) uint8 and the metadata dict.

    Raises:
        FileNotFoundError: a path that does not exist.
        VideoInputError: corrupt/empty/zero-frame videos, unsupported types, shapes or dtypes.
    """
    name = describe_input(source)
    if isinstance(source, np.ndarray):
        if source.ndim != 4 or source.shape[-1] != 3:
            raise VideoInputError(f"video {name}: expected an array of shape (T, H, W, 3), got shape {source.shape}")
        if source.dtype != np.uint8:
            raise VideoInputError(f"video {name}: expected dtype uint8, got {source.dtype}")
        if source.shape[0] == 0:
            raise VideoInputError(f"video {name} has no frames")
        if source.shape[1] == 0 or source.shape[2] == 0:
            raise VideoInputError(f"video {name}: frames have an empty dimension")
        return _sample_decoded(source, num_frames, fps)
    if isinstance(source, (list, tuple)):
        if len(source) == 0:
            raise VideoInputError("video is an empty list of frames")
        arrays = [_frame_to_array(frame, f"frame {i} of video {name}") for i, frame in enumerate(source)]
        shapes = {array.shape for array in arrays}
        if len(shapes) > 1:
            raise VideoInputError(f"video {name}: frames differ in size: {sorted(shapes)}")
        return _sample_decoded(np.stack(arrays), num_frames, fps)
    if not (isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(source, "read")):
        raise VideoInputError(
            f"unsupported video input {name}: expected a path, bytes, a binary file object, a uint8 array "
            "(T, H, W, 3) or a list of frames"
        )
    if fps is not None:
        raise ValueError(f"fps is only for decoded frames; video {name} is encoded and carries its own timing")
    reader = _open_decord_reader(source, name)
    num_source_frames = len(reader)
    indices = sample_frame_indices(num_source_frames, num_frames)
    try:
        # get_batch seeks to each requested index (from its preceding key frame) instead of decoding every frame.
        frames = reader.get_batch(indices.tolist()).asnumpy()
        frame_times = reader.get_frame_timestamp(indices.tolist())
        last_frame_end = float(reader.get_frame_timestamp([num_source_frames - 1])[0, 1])
    except Exception as error:  # decord raises its own error types for broken streams
        raise VideoInputError(f"could not decode the sampled frames of video {name}: {error}") from error
    metadata = {
        "fps": float(reader.get_avg_fps()),
        # The end of the last frame: T / fps for constant-frame-rate videos.
        "duration": last_frame_end,
        "num_source_frames": int(num_source_frames),
        "frame_indices": indices.tolist(),
        "timestamps": [float(t) for t in frame_times[:, 0]],
        "width": int(frames.shape[2]),
        "height": int(frames.shape[1]),
    }
    return SampledVideo(frames=frames, metadata=metadata)


def read_image(image: ImageInput) -> SampledVideo:
    """One image as a one-frame video: frames (1, H, W, 3) uint8, no timing in the metadata."""
    name = describe_input(image)
    if not isinstance(image, (Image.Image, np.ndarray)):
        raise VideoInputError(f"unsupported image input {name}: expected a PIL image or a uint8 array (H, W, 3)")
    frame = _frame_to_array(image, f"image {name}")
    metadata = {
        "fps": None,
        "duration": None,
        "num_source_frames": 1,
        "frame_indices": [0],
        "timestamps": None,
        "width": int(frame.shape[1]),
        "height": int(frame.shape[0]),
    }
    return SampledVideo(frames=frame[None], metadata=metadata)


def flatten_visual_inputs(inputs: Any, is_single: Any, kind: str) -> list[Any]:
    """Flatten a (possibly per-sample nested) list of videos or images into one ordered list.

    `processor(videos=...)` accepts one video, a list of videos, or a list of per-sample lists (what
    `apply_chat_template` passes). Videos fill the `<video>` placeholders of the batch in order, so the
    nesting only needs flattening. `is_single(item)` says whether `item` is one video/image.
    """
    if is_single(inputs):
        return [inputs]
    if not isinstance(inputs, (list, tuple)):
        raise VideoInputError(f"unsupported {kind} input {describe_input(inputs)}")
    flat: list[Any] = []
    for item in inputs:
        if is_single(item):
            flat.append(item)
        elif isinstance(item, (list, tuple)):
            flat.extend(flatten_visual_inputs(item, is_single, kind) if item else [])
        else:
            raise VideoInputError(f"unsupported {kind} input {describe_input(item)}")
    return flat
