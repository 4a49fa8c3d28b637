"""Atomic file writers for the synthetic world: JSON, JSONL, JPEG and mp4 (PyAV).

Every file is written to a temporary name in its destination folder and moved into place with `os.replace`, so a
reader never sees a half-written file and an interrupted run leaves the previous version intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

# mkstemp creates files readable by the owner only; finished files get the usual permissions instead.
_UMASK = os.umask(0)
os.umask(_UMASK)
# Preferred first; mpeg4 is the fallback for FFmpeg builds without libx264. Both decode with decord.
VIDEO_CODECS = ("libx264", "mpeg4")


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call `write(temporary_path)` for a temporary file next to `path`, then move it onto `path`.

    The temporary file keeps `path`'s suffix, so writers that pick a format from the extension still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~_UMASK)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    def write(temporary: str) -> None:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)

    return atomic_write(path, write)


def write_json(path: str | os.PathLike, data: object) -> Path:
    """JSON with sorted keys: the same data always gives the same bytes."""
    return write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def write_jsonl(path: str | os.PathLike, records: Iterable[object]) -> Path:
    """One compact JSON object a line."""
    return write_text(path, "".join(json.dumps(record, sort_keys=True) + "\n" for record in records))


def write_jpeg(path: str | os.PathLike, image: np.ndarray, quality: int = 95) -> Path:
    """Write an (H, W, 3) uint8 RGB image as JPEG."""
    from PIL import Image

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"write_jpeg({path}): expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    return atomic_write(path, lambda temporary: Image.fromarray(image).save(temporary, format="JPEG", quality=quality))


def available_video_codec() -> str:
    """The first of VIDEO_CODECS that this PyAV build can encode."""
    import av

    for codec in VIDEO_CODECS:
        if codec in av.codecs_available:
            return codec
    raise RuntimeError(f"PyAV {av.__version__} offers none of the video encoders {VIDEO_CODECS}")


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: int, codec: str | None = None) -> Path:
    """Encode (T, H, W, 3) uint8 RGB frames as a yuv420p mp4 at `fps`, one frame every 1/fps seconds.

    libx264 runs single-threaded at near-lossless quality (crf 12): the output is byte-identical across runs,
    and colours survive well enough for pixel-level checks of the ground truth.
    """
    import av

    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"write_mp4({path}): expected (T>0, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
    codec = codec or available_video_codec()
    options = {"crf": "12", "preset": "veryfast", "threads": "1"} if codec == "libx264" else {"qscale": "2"}

    def write(temporary: str) -> None:
        with av.open(temporary, mode="w", format="mp4") as container:
            stream = container.add_stream(codec, rate=fps, options=options)
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            stream.codec_context.time_base = Fraction(1, fps)
            stream.codec_context.thread_count = 1
            for index, pixels in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
                frame.pts = index
                frame.time_base = Fraction(1, fps)
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)

    return atomic_write(path, write)
