"""Reading videos and images into the N frames PiTe sees, plus the metadata post-processing needs.

Frames are sampled as the authors' release samples them (`utils/misc.py: extract_video` of yliu-cs/PiTe):
T is the number of frames a full decode yields, and the N indices are `np.linspace(0, T - 1, N)` truncated to
integers (first and last frame included; shorter videos repeat frames). The release decodes every frame with
`torchvision.io.read_video` (PyAV underneath); here encoded videos are decoded only as far as the sampled indices
need, with the same pixels as a full decode. Three backends: PyAV (the default, `decode_frames`: per file, either
from the key frame before each sampled frame, decoding forward, or one sequential pass, whichever the key-frame
layout makes cheaper, `choose_decode_strategy`), torchcodec (`VideoDecoder(seek_mode="exact").get_frames_at`,
PyTorch's decoder; an option) or decord (`VideoReader.get_batch`; VTimeLLM's reader, an option). All return the
same indices and metadata (T, times and rate come from PyAV's demuxing for torchcodec as for PyAV), and the same
frames where decord seeks exactly (`benchmarks/RESULTS.md` has their speeds). `frame_transform` is applied to each
sampled frame as soon as it is decoded (the processor resizes there), so the N frames are never all held at full
resolution. torchcodec, decord and av are imported lazily, inside try blocks, so that this file loads as Hub remote
code on machines without them (transformers' import check skips imports inside try blocks).

Containers that declare their frame count (mp4, mov) are checked against what demuxing finds: a file with fewer
readable frames than it declares (truncated) is refused rather than read as a shorter video.

This file is Hub remote code: it imports only numpy and PIL, and nothing from its own package.
"""

from __future__ import annotations

import bisect
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, BinaryIO, Union

import numpy as np
from PIL import Image

# What `read_video` accepts: a path, the encoded bytes, a binary file object, decoded frames as a uint8
# array (T, H, W, 3), or a sequence of frames (PIL images or uint8 arrays (H, W, 3)).
VideoInput = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO, np.ndarray, "list[Image.Image]"]
ImageInput = Union[Image.Image, np.ndarray]
# `read_video(backend=...)`: "auto" is PyAV (seeking or one pass, chosen per file) where it can be imported, else
# decord. torchcodec is an option: on the benchmark streams it was not reliably faster (`benchmarks/RESULTS.md`).
VIDEO_BACKENDS = ("auto", "decord", "pyav", "torchcodec")
# `read_video(decode_strategy=...)` of the PyAV backend: "auto" chooses per file (`choose_decode_strategy`).
DECODE_STRATEGIES = ("auto", "seek", "sequential")
# One decoded uint8 frame (H, W, 3) -> what is kept of it (e.g. the resized frame (h, w, 3)).
FrameTransform = Callable[[np.ndarray], np.ndarray]
# Frames torchcodec and decord decode per call when a transform shrinks them: bounds the full-resolution frames held.
TRANSFORM_CHUNK = 8
# torchcodec with a transform: frames per `get_frames_at` call. At 4K, 8 per call held 541 MB above the baseline
# for 100 frames (benchmarks, row video_memory); one per call holds one full-resolution frame at a time.
TORCHCODEC_TRANSFORM_CHUNK = 1
# What one seek costs, in decoded frames (the demuxer's seek, the decoder's flush and restart); measured on the
# benchmark streams (`benchmarks/video.py`, row video): a seek to a key frame costs about what decoding 4 frames does.
SEEK_COST_FRAMES = 4


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
    """Indices of the N frames sampled from a video of T frames: `np.linspace(0, T - 1, N)` truncated to integers,
    as the authors' release samples (`extract_video` in its `utils/misc.py`; VTimeLLM's `VideoExtractor` too).

    The first and last frames are always included; when T < N, frames repeat. Returns int64 array (N,).
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if num_source_frames < 1:
        raise VideoInputError(f"cannot sample frames from a video with {num_source_frames} frames")
    # Cast as the release does (float indices -> int32, i.e. truncation), then widen.
    return np.linspace(0, num_source_frames - 1, num_frames, dtype=np.int32).astype(np.int64)


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


def _sample_decoded(
    frames: np.ndarray, num_frames: int, fps: float | None, frame_transform: FrameTransform | None = None
) -> SampledVideo:
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
    if frame_transform is not None:
        return SampledVideo(frames=_transformed(frames, indices.tolist(), frame_transform), metadata=metadata)
    return SampledVideo(frames=np.ascontiguousarray(frames[indices]), metadata=metadata)


def _transformed(frames: Any, indices: list[int], frame_transform: FrameTransform) -> np.ndarray:
    """`frame_transform` of frames[i] for i in `indices`, each distinct index transformed once."""
    kept = {index: frame_transform(np.asarray(frames[index])) for index in sorted(set(indices))}
    return np.stack([kept[index] for index in indices])


class _FrameCollector:
    """Collects the decoded frames of the distinct sampled indices into one (N, h, w, 3) array in the order of
    `indices` (repeats included), transforming each as it arrives: no second full-size copy is made."""

    def __init__(self, indices: Sequence[int], frame_transform: FrameTransform | None) -> None:
        self.indices = [int(i) for i in indices]
        self.rows: dict[int, list[int]] = {}
        for row, index in enumerate(self.indices):
            self.rows.setdefault(index, []).append(row)
        self.frame_transform = frame_transform
        self.frames: np.ndarray | None = None
        self.source_size: tuple[int, int] | None = None  # (height, width) before the transform

    def add(self, index: int, frame: np.ndarray) -> None:
        if self.source_size is None:
            self.source_size = (int(frame.shape[0]), int(frame.shape[1]))
        if self.frame_transform is not None:
            frame = self.frame_transform(frame)
        if self.frames is None:
            self.frames = np.empty((len(self.indices), *frame.shape), dtype=frame.dtype)
        for row in self.rows[index]:
            self.frames[row] = frame


def _import_video_library(module: str, backend: str) -> Any:
    """`decord` or `av`, imported on first use: this file must load without them (Hub remote code)."""
    try:
        if module == "decord":
            import decord as library
        elif module == "torchcodec":
            from torchcodec import decoders as library
        else:
            import av as library
    except (ImportError, OSError, RuntimeError) as error:  # torchcodec raises OSError when FFmpeg cannot load
        if backend == "auto":
            raise ImportError(
                "reading encoded videos needs PyAV or decord (`pip install av` or `pip install decord`)"
            ) from error
        if module == "torchcodec":
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ImportError(
                f"backend={backend!r} needs torchcodec, a build matching the installed torch, and FFmpeg's shared "
                f"libraries (`pip install torchcodec`, e.g. `apt-get install ffmpeg`): {first_line}"
            ) from error
        library_name = "decord" if module == "decord" else "PyAV"
        raise ImportError(f"backend={backend!r} needs {library_name} (`pip install {module}`)") from error
    return library


def torchcodec_available() -> bool:
    """True where torchcodec imports and loads its FFmpeg libraries (its wheels are tied to one torch version)."""
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    except (ImportError, OSError, RuntimeError):
        return False
    return True


def _resolve_backend(backend: str) -> str:
    """The backend that reads encoded inputs for a `VIDEO_BACKENDS` value: "auto" is PyAV where it can be imported
    (faster than decord for the same frames, and than torchcodec or as fast, `benchmarks/RESULTS.md`), else
    "decord"."""
    if backend != "auto":
        return backend
    try:
        import av  # noqa: F401
    except ImportError:
        return "decord"
    return "pyav"


def _encoded_input(source: Any, name: str) -> str | io.BytesIO:
    """The path of an existing file, or the bytes of `source` (bytes or a binary file object) as a BytesIO."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"video file not found: {path!r}")
        return path
    data = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else source.read()
    if not isinstance(data, (bytes, bytearray)):
        raise VideoInputError(f"video {name}: file object must be opened in binary mode")
    if len(data) == 0:
        raise VideoInputError(f"video {name} is empty (0 bytes)")
    return io.BytesIO(bytes(data))


def _could_not_open(name: str, error: Any) -> VideoInputError:
    return VideoInputError(
        f"could not open video {name}: corrupt, truncated, not a video, or without video frames ({error})"
    )


def _open_decord_reader(source: Any, name: str, backend: str) -> Any:
    """A `decord.VideoReader` over a path, bytes or file object, with specific errors for bad input."""
    decord = _import_video_library("decord", backend)
    uri = _encoded_input(source, name)
    try:
        reader = decord.VideoReader(uri, num_threads=1)
    except (RuntimeError, decord.DECORDError) as error:
        raise _could_not_open(name, error) from error
    if len(reader) == 0:
        raise VideoInputError(f"video {name} has no frames")
    return reader


def _read_with_decord(
    source: Any, num_frames: int, name: str, backend: str, frame_transform: FrameTransform | None = None
) -> SampledVideo:
    """`read_video` of an encoded input with decord (`backend` is the requested one, for the ImportError)."""
    reader = _open_decord_reader(source, name, backend)
    num_source_frames = len(reader)
    indices = sample_frame_indices(num_source_frames, num_frames)
    distinct = sorted(set(indices.tolist()))
    # get_batch seeks to each requested index (from its preceding key frame) instead of decoding every frame; with
    # a transform, a few frames per call, so that only those are held at full resolution.
    chunk = TRANSFORM_CHUNK if frame_transform is not None else len(distinct)
    collector = _FrameCollector(indices, frame_transform)
    try:
        for start in range(0, len(distinct), chunk):
            part = distinct[start : start + chunk]
            for index, frame in zip(part, reader.get_batch(part).asnumpy()):
                collector.add(index, frame)
        frame_times = reader.get_frame_timestamp(indices.tolist())
        last_frame_end = float(reader.get_frame_timestamp([num_source_frames - 1])[0, 1])
    except Exception as error:  # decord raises its own error types for broken streams
        raise VideoInputError(
            f"decord could not decode the sampled frames of video {name} ({error}); if the file plays elsewhere, "
            "read it with backend='pyav'"
        ) from error
    height, width = collector.source_size
    metadata = {
        "fps": float(reader.get_avg_fps()),
        # The end of the last frame: T / fps for constant-frame-rate videos.
        "duration": last_frame_end,
        "num_source_frames": int(num_source_frames),
        "frame_indices": indices.tolist(),
        "timestamps": [float(t) for t in frame_times[:, 0]],
        "width": width,
        "height": height,
    }
    return SampledVideo(frames=collector.frames, metadata=metadata)


@dataclass(frozen=True)
class KeyFrameStructure:
    """Where the frames and key frames of a video stream are, in display order (from demuxing; nothing decoded).

    Attributes:
        frame_pts: presentation timestamp of each frame (T,), ascending, in the stream's time base.
        key_frames: display indices of the key frames, ascending; the first is 0 (a decoder starts at a key frame).
        end_pts: where the last frame ends (its timestamp + its packet's duration); None where packets carry no
            duration.
    """

    frame_pts: tuple[int, ...]
    key_frames: tuple[int, ...]
    end_pts: int | None = None

    def __post_init__(self) -> None:
        if not self.key_frames or self.key_frames[0] != 0:
            raise ValueError(f"the first frame must be a key frame, got key frames {self.key_frames[:5]}...")
        if list(self.key_frames) != sorted(set(self.key_frames)) or self.key_frames[-1] >= self.num_frames:
            raise ValueError("key_frames must be ascending, unique display indices below the number of frames")
        if any(later <= earlier for earlier, later in zip(self.frame_pts, self.frame_pts[1:])):
            raise ValueError("frame_pts must be ascending and unique (one timestamp per displayed frame)")

    @property
    def num_frames(self) -> int:
        """T, frames in the stream."""
        return len(self.frame_pts)

    def gop_start(self, index: int) -> int:
        """The latest key frame at or before display index `index`: where decoding frame `index` starts."""
        if not 0 <= index < self.num_frames:
            raise IndexError(f"frame index {index} outside a video of {self.num_frames} frames")
        return self.key_frames[bisect.bisect_right(self.key_frames, index) - 1]


def probe_key_frames(container: Any, name: str = "<video>") -> KeyFrameStructure:
    """The `KeyFrameStructure` of the first video stream of an open PyAV input container, from its packets.

    T counts the stream's packets (as decord does when it opens a file), not the container header's frame count,
    which some containers (e.g. Matroska) do not have; where the header has one, fewer packets than it declares
    means a truncated file. Raises VideoInputError, naming `name`, for a stream without frames, a truncated
    stream, packets without timestamps, or a stream that does not start at a key frame.
    """
    stream = container.streams.video[0]
    packets = []
    for packet in container.demux(stream):
        if packet.size == 0:  # the demuxer ends with an empty flush packet
            continue
        if packet.pts is None:
            raise VideoInputError(f"video {name}: a packet has no presentation timestamp; try backend='decord'")
        packets.append((packet.pts, bool(packet.is_keyframe), packet.duration or 0))
    if not packets:
        raise VideoInputError(f"video {name} has no frames")
    _check_declared_frames(stream, len(packets), name)
    packets.sort()  # decode order -> display order
    last_pts, _, last_duration = packets[-1]
    try:
        return KeyFrameStructure(
            frame_pts=tuple(pts for pts, _, _ in packets),
            key_frames=tuple(i for i, (_, key, _) in enumerate(packets) if key),
            end_pts=last_pts + last_duration if last_duration > 0 else None,
        )
    except ValueError as error:
        raise VideoInputError(
            f"video {name} cannot be read by seeking with PyAV: {error}; try backend='decord'"
        ) from error


def choose_decode_strategy(structure: KeyFrameStructure, indices: Sequence[int]) -> str:
    """ "seek" or "sequential": whichever decodes fewer frames for `indices`, a seek counted as `SEEK_COST_FRAMES`.

    Seeking decodes, per GOP holding sampled frames, from its key frame (or on from the previous sampled frame) to the
    last sampled frame in it, plus a seek per such GOP; one sequential pass decodes everything from the first sampled
    frame's key frame to the last sampled frame. When the samples cover most GOPs nearly to their ends, the pass
    wins. Either way the frames are the same (a decoder's output does not depend on where it started, from a key
    frame); only the time differs."""
    targets = sorted(set(int(i) for i in indices))
    if not targets:
        raise ValueError("choose_decode_strategy needs at least one frame index")
    seek_cost, position = 0, None
    for target in targets:
        start = structure.gop_start(target)
        if position is not None and structure.gop_start(position) == start:
            seek_cost += target - position
        else:
            seek_cost += target - start + 1 + SEEK_COST_FRAMES
        position = target
    sequential_cost = targets[-1] - structure.gop_start(targets[0]) + 1 + SEEK_COST_FRAMES
    return "sequential" if sequential_cost <= seek_cost else "seek"


def decode_frames(
    container: Any,
    structure: KeyFrameStructure,
    indices: Sequence[int],
    name: str = "<video>",
    strategy: str = "auto",
    frame_transform: FrameTransform | None = None,
) -> tuple[np.ndarray, int, tuple[int, int]]:
    """Decode the frames at display `indices` of an open PyAV container's first video stream.

    `strategy` "seek": for each index in ascending order, decoding goes on from the previous one when both lie in
    the same GOP (a key frame and the frames up to the next one), else it seeks to the index's key frame first.
    "sequential": one seek to the first index's key frame, then decoding straight through to the last index.
    "auto": `choose_decode_strategy`. Decoded frames are matched to indices by their timestamps; each sampled frame
    is converted to RGB and passed through `frame_transform` as soon as it is decoded.

    Returns (frames uint8 (N, h, w, 3) RGB in the order of `indices`, repeats included; the number of frames
    decoded; (height, width) of the decoded frames before the transform).
    """
    if len(indices) == 0:
        raise ValueError("decode_frames needs at least one frame index")
    if strategy not in DECODE_STRATEGIES:
        raise ValueError(f"decode_strategy must be one of {', '.join(map(repr, DECODE_STRATEGIES))}, got {strategy!r}")
    if strategy == "auto":
        strategy = choose_decode_strategy(structure, indices)
    stream = container.streams.video[0]
    index_of_pts = {pts: index for index, pts in enumerate(structure.frame_pts)}
    collector = _FrameCollector(indices, frame_transform)
    decoded, position, frames = 0, -1, iter(())
    for target in sorted(set(int(i) for i in indices)):
        key_frame = structure.gop_start(target)
        # Nothing decoded in the target's GOP yet (or nothing at all, sequentially): start at its key frame.
        if position < 0 or (strategy == "seek" and position < key_frame):
            container.seek(structure.frame_pts[key_frame], stream=stream, backward=True, any_frame=False)
            frames = container.decode(stream)
        for frame in frames:
            decoded += 1
            if frame.pts not in index_of_pts:
                raise VideoInputError(
                    f"video {name}: decoded a frame with timestamp {frame.pts} that demuxing did not list"
                )
            position = index_of_pts[frame.pts]
            if position >= target:
                break
        else:
            raise VideoInputError(f"video {name}: the stream ended before frame {target}")
        if position != target:
            raise VideoInputError(f"video {name}: the decoder skipped frame {target} (went on to frame {position})")
        collector.add(target, frame.to_ndarray(format="rgb24"))
    return collector.frames, decoded, collector.source_size


def decode_by_seeking(
    container: Any, structure: KeyFrameStructure, indices: Sequence[int], name: str = "<video>"
) -> tuple[np.ndarray, int]:
    """`decode_frames` with `strategy="seek"`, full-resolution frames: (frames (N, H, W, 3), frames decoded)."""
    frames, decoded, _ = decode_frames(container, structure, indices, name, strategy="seek")
    return frames, decoded


def decode_with_torchcodec(
    encoded: str | io.BytesIO,
    indices: Sequence[int],
    name: str = "<video>",
    frame_transform: FrameTransform | None = None,
) -> tuple[np.ndarray, tuple[int, int]]:
    """The frames at display `indices` of an encoded video, decoded by torchcodec's exact-seek `VideoDecoder`
    (frame i is the i-th in presentation order, as in `probe_key_frames`), one FFmpeg thread as PyAV decodes.

    With `frame_transform`, `TORCHCODEC_TRANSFORM_CHUNK` frames per `get_frames_at` call, each transformed before
    the next call (the decoder keeps its position between calls and decodes on within a GOP). Returns
    (frames (N, h, w, 3), (height, width) before the transform)."""
    decoders = _import_video_library("torchcodec", "torchcodec")
    source = encoded.getvalue() if isinstance(encoded, io.BytesIO) else encoded
    distinct = sorted(set(int(i) for i in indices))
    collector = _FrameCollector(indices, frame_transform)
    try:
        decoder = decoders.VideoDecoder(source, seek_mode="exact", dimension_order="NHWC", num_ffmpeg_threads=1)
        if frame_transform is None:  # torchcodec's own output, in the order of `indices`: no second copy
            frames = decoder.get_frames_at([int(i) for i in indices]).data.numpy()
            return frames, (int(frames.shape[1]), int(frames.shape[2]))
        for start in range(0, len(distinct), TORCHCODEC_TRANSFORM_CHUNK):
            part = distinct[start : start + TORCHCODEC_TRANSFORM_CHUNK]
            for index, frame in zip(part, decoder.get_frames_at(part).data.numpy()):
                collector.add(index, frame)
    except (RuntimeError, ValueError, IndexError) as error:
        raise VideoInputError(
            f"torchcodec could not decode the sampled frames of video {name} ({error}); try backend='pyav'"
        ) from error
    return collector.frames, collector.source_size


def _seconds(pts_span: int, time_base: Fraction) -> float:
    return float(pts_span * time_base)


def _check_declared_frames(stream: Any, found: int, name: str) -> None:
    """Refuse a stream whose container declares more frames than demuxing finds (a truncated file).

    Only containers that store a frame count (mp4/mov sample tables) declare one; Matroska/WebM declare none.
    """
    declared = int(stream.frames or 0)
    if declared and found < declared:
        raise VideoInputError(
            f"video {name} is truncated or damaged: its container declares {declared} frames but only {found} can "
            "be read"
        )


def _read_with_pyav(
    source: Any,
    num_frames: int,
    name: str,
    backend: str,
    frame_transform: FrameTransform | None = None,
    decode_strategy: str = "auto",
) -> SampledVideo:
    """`read_video` of an encoded input with PyAV demuxing (T, key frames, times) and PyAV's `decode_frames` or, for
    `backend="torchcodec"`, torchcodec's decoder."""
    av = _import_video_library("av", backend)
    encoded = _encoded_input(source, name)
    if backend == "torchcodec":
        _import_video_library("torchcodec", backend)  # a clear ImportError before anything is decoded
    try:
        container = av.open(encoded)
    except av.error.FFmpegError as error:
        raise _could_not_open(name, error) from error
    with container:
        if not container.streams.video:
            raise _could_not_open(name, "no video stream")
        stream = container.streams.video[0]
        try:
            structure = probe_key_frames(container, name)
            indices = sample_frame_indices(structure.num_frames, num_frames)
            if backend == "torchcodec":
                # torchcodec 0.13 stops early on some streams PyAV reads (x264 open GOPs): it raises, naming PyAV.
                frames, (height, width) = decode_with_torchcodec(encoded, indices, name, frame_transform)
            else:
                frames, _, (height, width) = decode_frames(
                    container, structure, indices, name, decode_strategy, frame_transform
                )
        except av.error.FFmpegError as error:
            raise VideoInputError(f"could not decode the sampled frames of video {name}: {error}") from error
        time_base, rate = Fraction(stream.time_base), stream.average_rate or stream.guessed_rate
    # Times count from the first frame, as decord's do (a stream may start at a non-zero timestamp).
    start, last = structure.frame_pts[0], structure.frame_pts[-1]
    if not rate:
        raise VideoInputError(f"video {name}: the container gives no frame rate; try backend='decord'")
    fps = float(rate)
    end = _seconds(structure.end_pts - start, time_base) if structure.end_pts is not None else None
    metadata = {
        "fps": fps,
        # The end of the last frame (its timestamp + duration): T / fps for constant-frame-rate videos.
        "duration": end if end is not None else _seconds(last - start, time_base) + 1 / fps,
        "num_source_frames": structure.num_frames,
        "frame_indices": indices.tolist(),
        "timestamps": [_seconds(structure.frame_pts[i] - start, time_base) for i in indices],
        "width": width,
        "height": height,
    }
    return SampledVideo(frames=frames, metadata=metadata)


def read_video(
    source: VideoInput,
    num_frames: int,
    fps: float | None = None,
    backend: str = "auto",
    frame_transform: FrameTransform | None = None,
    decode_strategy: str = "auto",
) -> SampledVideo:
    """Sample `num_frames` frames from one video.

    Args:
        source: a path, encoded bytes, a binary file object, a uint8 array (T, H, W, 3), or a non-empty sequence
            of frames (PIL images or uint8 arrays (H, W, 3), all the same size).
        num_frames: N, the number of frames to sample.
        fps: frame rate of *decoded* inputs (arrays, frame lists), used for timestamps and duration. Encoded
            inputs carry their own timing; passing `fps` for them is an error (it would be silently ignored).
        backend: reader of encoded inputs, one of `VIDEO_BACKENDS`: "torchcodec", "decord", "pyav", or "auto"
            (PyAV, seeking or in one pass as `choose_decode_strategy` decides per file; without PyAV, decord).
            torchcodec (an option; not reliably faster on the benchmark streams) reads the same frames; its T,
            times and rate are PyAV's (it demuxes the file for them); its frames are those of a full decode
            (tested). PyAV and decord seek to the same indices and give the same metadata: T counted from the
            stream's packets (not the header, which some containers lack), times from the first frame's
            timestamp, `fps` the container's average frame rate. Where they can differ: decord's times are float32;
            without an average frame rate PyAV takes FFmpeg's guessed rate; without packet durations PyAV's
            `duration` is the last timestamp + 1 / fps. PyAV's frames are those of a full decode (tested); decord's
            were the same on most streams, but its seeks returned neighbouring frames on some (x264 open GOPs near
            the end, HEVC in Matroska).
        frame_transform: applied to each sampled uint8 frame (H, W, 3) as soon as it is decoded (e.g. the
            processor's resize); the returned frames are its outputs, `width` / `height` stay the video's.
        decode_strategy: PyAV backend only: "seek", "sequential" or "auto" (per file, from the key-frame layout,
            `choose_decode_strategy`); the frames are the same either way.

    Returns:
        a `SampledVideo` with frames (N, H, W, 3) uint8 and the metadata dict.

    Raises:
        ValueError: a `backend` not in `VIDEO_BACKENDS` or a `decode_strategy` not in `DECODE_STRATEGIES`; `fps`
            given for an encoded input.
        ImportError: the backend's library (torchcodec, decord, av; for "auto" av or decord) is not installed.
        FileNotFoundError: a path that does not exist.
        VideoInputError: corrupt/empty/zero-frame videos, unsupported types, shapes or dtypes.
    """
    if backend not in VIDEO_BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, VIDEO_BACKENDS))}, got {backend!r}")
    if decode_strategy not in DECODE_STRATEGIES:
        raise ValueError(
            f"decode_strategy must be one of {', '.join(map(repr, DECODE_STRATEGIES))}, got {decode_strategy!r}"
        )
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
        return _sample_decoded(source, num_frames, fps, frame_transform)
    if isinstance(source, (list, tuple)):
        if len(source) == 0:
            raise VideoInputError("video is an empty list of frames")
        arrays = [_frame_to_array(frame, f"frame {i} of video {name}") for i, frame in enumerate(source)]
        shapes = {array.shape for array in arrays}
        if len(shapes) > 1:
            raise VideoInputError(f"video {name}: frames differ in size: {sorted(shapes)}")
        return _sample_decoded(np.stack(arrays), num_frames, fps, frame_transform)
    if not (isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(source, "read")):
        raise VideoInputError(
            f"unsupported video input {name}: expected a path, bytes, a binary file object, a uint8 array "
            "(T, H, W, 3) or a list of frames"
        )
    if fps is not None:
        raise ValueError(f"fps is only for decoded frames; video {name} is encoded and carries its own timing")
    resolved = _resolve_backend(backend)
    if resolved == "decord":
        return _read_with_decord(source, num_frames, name, backend, frame_transform)
    return _read_with_pyav(source, num_frames, name, resolved, frame_transform, decode_strategy)


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
