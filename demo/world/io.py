"""Media writers for the synthetic world: JPEG and mp4 (PyAV), written atomically.

Atomic writing itself (temporary file in the destination folder, then `os.replace`) and the JSON/JSONL writers live
in `pite.core.file_writing`.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from pite.core.file_writing import atomic_write

__all__ = ["VIDEO_CODECS", "available_video_codec", "write_jpeg", "write_mp4"]

# Preferred first; mpeg4 is the fallback for FFmpeg builds without libx264. Both decode with decord.
VIDEO_CODECS = ("libx264", "mpeg4")


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
    # Without rc-lookahead=0:mbtree=0, x264 (as PyAV bundles it, threads=1) encoded the same frames to different
    # bytes in about 1 run of 3 once torch was imported (measured on the demo world), so a seed did not give the
    # same files; frame-type and macroblock-tree lookahead matter little at crf 12.
    options = (
        {"crf": "12", "preset": "veryfast", "threads": "1", "x264-params": "rc-lookahead=0:mbtree=0"}
        if codec == "libx264"
        else {"qscale": "2"}
    )

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
