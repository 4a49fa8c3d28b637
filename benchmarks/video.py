"""Video reading: how many frames each reader decodes, and what it costs.

A decoder can only start at a key frame. To get the N sampled frames, a seek-based reader (both backends of
`pite.processing.read_video`: decord's `get_batch`, and PyAV's `decode_by_seeking`) seeks to the latest key frame at
or before each index and decodes forward to it, or keeps decoding from the previous sampled index when both lie in
the same GOP (group of pictures, a key frame and the frames up to the next). A sequential reader decodes every frame
up to the last sampled one and keeps the sampled ones. When the sampled indices lie closer together than the key
frames, seeking saves nothing and only adds seek overhead: that is when `read_sequential_when_dense` decodes forward
instead.

The counts come from demuxing alone (packets and their key-frame flags, no decoding; the library's
`probe_key_frames`). They assume decode order equals display order inside a GOP, which holds for streams without
B-frames (what `write_test_video` writes); with B-frames a decoder needs up to the reorder depth more. The library's
PyAV backend counts the frames it decodes (`read_by_seeking` here reports it): the tests check the model against it,
and the video row times that backend beside decord (whose `SeekAccurate` follows the same rule, but re-seeks to the
start before each key frame and does not report counts).
"""

from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pite.processing.video_reading_pite import KeyFrameStructure, decode_by_seeking
from pite.processing.video_reading_pite import probe_key_frames as probe_container

from .measure import result, skipped, timed_alternating
from .models import BenchSizes


def write_test_video(
    path: str | os.PathLike,
    num_frames: int,
    fps: int,
    width: int,
    height: int,
    gop: int,
    textured: bool = True,
) -> int:
    """Write an H.264 mp4 with a key frame exactly every `gop` frames and no B-frames; returns the frame count.

    `textured`: a random block texture sliding 3 px per frame (costs a decoder about what real footage does);
    otherwise flat frames of grey level `(7 * index) % 256`, so a decoded frame tells its index.
    """
    import av

    if width % 2 or height % 2:
        raise ValueError(f"H.264 yuv420p needs even frame sizes, got {width}x{height}")
    rng = np.random.default_rng(0)
    block = 8
    texture = np.repeat(
        np.repeat(rng.integers(0, 256, (height // block + 1, width // block + 1, 3), dtype=np.uint8), block, 0),
        block,
        1,
    )[:height]
    with av.open(os.fspath(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        # Fixed GOP: no scene-cut key frames, no B-frames (decode order = display order).
        stream.options = {
            "preset": "ultrafast",
            "g": str(gop),
            "keyint_min": str(gop),
            "sc_threshold": "0",
            "bframes": "0",
        }
        for index in range(num_frames):
            if textured:
                frame = np.ascontiguousarray(np.roll(texture, 3 * index, axis=1)[:, :width])
            else:
                frame = np.full((height, width, 3), (7 * index) % 256, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return num_frames


def probe_key_frames(path: str | os.PathLike) -> KeyFrameStructure:
    """The key-frame structure of the first video stream of a file, from demuxed packets only (nothing decoded)."""
    import av

    with av.open(os.fspath(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{os.fspath(path)!r} has no video stream")
        return probe_container(container, repr(os.fspath(path)))


def mean_gop(structure: KeyFrameStructure) -> float:
    """Mean distance between key frames (frames per GOP)."""
    return structure.num_frames / len(structure.key_frames)


def frames_decoded_by_seeking(structure: KeyFrameStructure, indices: Sequence[int]) -> int:
    """Frames a seek reader decodes for `indices`: from each GOP's key frame, or on from the previous sampled index
    when it lies earlier in the same GOP."""
    decoded, position = 0, None
    for target in sorted(set(int(i) for i in indices)):
        start = structure.gop_start(target)
        if position is not None and structure.gop_start(position) == start:
            decoded += target - position
        else:
            decoded += target - start + 1
        position = target
    return decoded


def frames_decoded_sequentially(indices: Sequence[int]) -> int:
    """Frames a sequential reader decodes for `indices`: every frame up to the last sampled one."""
    return max(int(i) for i in indices) + 1


def is_dense(structure: KeyFrameStructure, indices: Sequence[int]) -> bool:
    """True when the sampled indices lie closer together (median gap) than the key frames (mean GOP)."""
    unique = sorted(set(int(i) for i in indices))
    if len(unique) < 2:
        return False
    gaps = [b - a for a, b in zip(unique, unique[1:])]
    return statistics.median(gaps) < mean_gop(structure)


@dataclass
class SampledFrames:
    """Frames read by one of the readers here.

    Attributes:
        frames: uint8 (N, H, W, 3) RGB, in the order of the requested indices (repeats included).
        frames_decoded: frames the reader decoded (counted by `read_sequential` / `read_by_seeking`; by the
            model of `frames_decoded_by_seeking` for decord, which does not report it).
        strategy: "sequential", "seek (PyAV)" or "seek (decord)".
    """

    frames: np.ndarray
    frames_decoded: int
    strategy: str


def _in_requested_order(kept: dict[int, np.ndarray], indices: Sequence[int]) -> np.ndarray:
    return np.stack([kept[int(i)] for i in indices])


def read_sequential(path: str | os.PathLike, indices: Sequence[int]) -> SampledFrames:
    """Decode forward from the first frame through the last sampled one, converting only the sampled frames."""
    import av

    wanted, last = set(int(i) for i in indices), frames_decoded_sequentially(indices) - 1
    kept: dict[int, np.ndarray] = {}
    decoded = 0
    with av.open(os.fspath(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            decoded += 1
            if index in wanted:
                kept[index] = frame.to_ndarray(format="rgb24")
            if index == last:
                break
    if len(kept) != len(wanted):
        missing = sorted(wanted - set(kept))[:5]
        raise ValueError(f"{os.fspath(path)!r} ended after {decoded} frames; sampled frames {missing}... not decoded")
    return SampledFrames(_in_requested_order(kept, indices), decoded, "sequential")


def read_by_seeking(path: str | os.PathLike, indices: Sequence[int], structure: KeyFrameStructure) -> SampledFrames:
    """The library's PyAV seek reader (`decode_by_seeking`, which `read_video(backend="pyav")` uses) on `indices`,
    with the number of frames it decoded."""
    import av

    with av.open(os.fspath(path)) as container:
        frames, decoded = decode_by_seeking(container, structure, indices, repr(os.fspath(path)))
    return SampledFrames(frames, decoded, "seek (PyAV)")


def read_sequential_when_dense(path: str | os.PathLike, num_frames: int) -> SampledFrames:
    """The prototype reader: PiTe's N linspace frames, decoded sequentially when they lie closer together than the
    key frames, else read by decord's seeks (`pite.processing.read_video(backend="decord")`)."""
    from pite.processing import read_video, sample_frame_indices

    structure = probe_key_frames(path)
    indices = sample_frame_indices(structure.num_frames, num_frames).tolist()
    if is_dense(structure, indices):
        return read_sequential(path, indices)
    sampled = read_video(os.fspath(path), num_frames=num_frames, backend="decord")
    return SampledFrames(sampled.frames, frames_decoded_by_seeking(structure, indices), "seek (decord)")


def decode_everything(path: str | os.PathLike, indices: Sequence[int]) -> SampledFrames:
    """What a naive reader does: decode and convert every frame, keep the sampled ones."""
    import av

    wanted, kept, decoded = set(int(i) for i in indices), {}, 0
    with av.open(os.fspath(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            decoded += 1
            array = frame.to_ndarray(format="rgb24")
            if index in wanted:
                kept[index] = array
    return SampledFrames(_in_requested_order(kept, indices), decoded, "full decode")


GOPS = (30, 60, 250)  # short; this suite's earlier 2 s at 30 fps; long, typical of web video
HD_STREAMS = ((1280, 720, 250), (1920, 1080, 60))  # width, height, key frame interval; `hd_seconds` long


def read_video_pyav_like(path: str | os.PathLike, indices: Sequence[int]) -> np.ndarray:
    """A sequential PyAV reader as transformers' model docs write it (`read_video_pyav`: decode from the start,
    keep the frames whose position is in `indices`, stop after the last): (N, H, W, 3) in the order of `indices`."""
    return read_sequential(path, indices).frames


def read_with_torchcodec(path: str | os.PathLike, indices: Sequence[int]) -> np.ndarray:
    """torchcodec as its users call it: `VideoDecoder(path, seek_mode="exact").get_frames_at(indices)`, NHWC."""
    from torchcodec.decoders import VideoDecoder

    decoder = VideoDecoder(os.fspath(path), seek_mode="exact", dimension_order="NHWC")
    return decoder.get_frames_at([int(i) for i in indices]).data.numpy()


def peak_rss_above(function: Callable[[], Any]) -> tuple[Any, int]:
    """`function()` and the peak resident memory it added above the RSS before it (bytes), from Linux's VmHWM after
    resetting it (`/proc/self/clear_refs`); 0 where that is not available."""
    import gc

    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        before = _status_kib("VmRSS")
    except OSError:
        return function(), 0
    value = function()
    return value, max(0, _status_kib("VmHWM") - before) * 1024


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def _streams(sizes: BenchSizes) -> list[tuple[str, int, int, int, int]]:
    """(name, frames, width, height, key frame interval) of the streams the video row reads."""
    streams = [
        (f"g={gop}", sizes.video_seconds * sizes.video_fps, sizes.video_width, sizes.video_height, gop) for gop in GOPS
    ]
    streams += [
        (f"{height}p", sizes.hd_seconds * sizes.video_fps, width, height, gop) for width, height, gop in HD_STREAMS
    ]
    return streams


def row_video(sizes: BenchSizes) -> list[dict[str, Any]]:
    """For each stream (the GOP 30/60/250 streams, a 720p and a 1080p one), sampling `num_frames` frames: time,
    frames decoded, peak memory and pixels against a full decode of every reader: PiTe's default reader
    (`read_video()`), its PyAV backend forced to seek or to one pass, decord's seeks (VTimeLLM's reader), torchcodec's
    exact seeks (`get_frames_at`), a sequential PyAV reader (transformers' `read_video_pyav`), and a full
    decode+convert (the PiTe release's way). The ratio: the default reader's time / the fastest reader's (fastest of
    the repeats), target <= 1.10."""
    try:
        import av  # noqa: F401
        import decord  # noqa: F401
    except ImportError as error:
        return [skipped("video", f"needs PyAV and decord: {error}")]
    from pite.processing import read_video, sample_frame_indices
    from pite.processing.video_reading_pite import _resolve_backend, choose_decode_strategy, torchcodec_available

    records = []
    if not torchcodec_available():
        records.append(
            skipped(
                "video (torchcodec)",
                "torchcodec cannot be imported here (`pip install -e .[bench]` "
                "with a torchcodec build for this torch, plus FFmpeg's shared libraries, e.g. "
                "`apt-get install ffmpeg`); its columns are left out",
            )
        )
    default_backend = _resolve_backend("auto")
    with tempfile.TemporaryDirectory() as tmp:
        for name, frames_in_video, width, height, gop in _streams(sizes):
            path = Path(tmp) / f"{name}.mp4"
            write_test_video(path, frames_in_video, sizes.video_fps, width, height, gop)
            structure = probe_key_frames(path)
            indices = sample_frame_indices(structure.num_frames, sizes.num_frames).tolist()
            readers: dict[str, Callable[[], np.ndarray]] = {
                "default": lambda: read_video(str(path), sizes.num_frames).frames,
                "pyav_seek": lambda: (
                    read_video(str(path), sizes.num_frames, backend="pyav", decode_strategy="seek").frames
                ),
                "pyav_one_pass": lambda: (
                    read_video(str(path), sizes.num_frames, backend="pyav", decode_strategy="sequential").frames
                ),
                "decord": lambda: read_video(str(path), sizes.num_frames, backend="decord").frames,
                "sequential_pyav": lambda: read_video_pyav_like(path, indices),
                "full_decode": lambda: decode_everything(path, indices).frames,
            }
            if torchcodec_available():
                readers["torchcodec"] = lambda: read_with_torchcodec(path, indices)
            reference = decode_everything(path, indices).frames
            figures: dict[str, Any] = {}
            for reader, function in readers.items():
                frames, peak = peak_rss_above(function)
                diff = int(np.abs(frames.astype(np.int16) - reference).max())
                figures[f"{reader}_peak_mb"] = round(peak / 2**20, 1)
                figures[f"{reader}_max_abs_diff"] = diff
            # The fastest of the repeats: other jobs on a shared machine only ever add time, and each reader's
            # median moved by up to 20% between runs while its minimum did not.
            times = timed_alternating(readers, repeats=max(1, sizes.repeats // 2), warmup=0, reduce=min)
            fastest = min(times, key=times.get)
            figures.update({f"{reader}_s": seconds for reader, seconds in times.items()})
            figures.update(
                fastest=fastest,
                default_backend=default_backend,
                pyav_strategy=choose_decode_strategy(structure, indices),
                frames_in_video=structure.num_frames,
                key_frames=len(structure.key_frames),
                decoded_by_seek=frames_decoded_by_seeking(structure, indices),
                decoded_one_pass=frames_decoded_sequentially(indices),
                full_over_default=times["full_decode"] / times["default"],
            )
            records.append(
                result(
                    f"video ({name})",
                    times["default"] / times[fastest],
                    "PiTe default reader / fastest reader",
                    figures,
                    f"{sizes.num_frames} of {structure.num_frames} frames ({frames_in_video / sizes.video_fps:g} s, "
                    f"{sizes.video_fps} fps, {width}x{height} H.264, key frame every {gop}); *_max_abs_diff against a "
                    "full decode; *_peak_mb: resident memory above the reader's start",
                    target=1.10,
                )
            )
    return records
