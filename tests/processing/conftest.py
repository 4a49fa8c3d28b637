"""Fixtures for the processing tests: a tiny processor and real mp4 files whose frames encode their own index.

Every frame carries its index as 16 black/white 16x16 blocks (2 rows x 8 columns, bit b = block b) in the
top-left 128x32 pixels, which survives H.264/MPEG-4 compression, so a test can read back WHICH frames a reader
returned. `run_without_pite` runs a script in a child interpreter that cannot import `pite`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

BLOCK = 16
BITS = 16
CORPUS = [
    "A chat between a curious user and an artificial intelligence assistant.",
    "The assistant gives helpful, detailed, and polite answers to the user's questions.",
    "USER: ASSISTANT: the red circle moves to the left of the blue square.",
    "What is moving in the video? During which frames can we see the circle? from 10 to 45.",
    "In this image we can see a person holding a cup on a table.",
]


# Prepended to every child script: a meta-path hook makes any `import pite...` fail (and checks that it does), as on
# a machine with only transformers, so only the flat files saved beside a checkpoint can provide processor and model.
BLOCK_PITE = textwrap.dedent(
    """
    import sys

    class BlockPite:
        def find_spec(self, name, path=None, target=None):
            if name == "pite" or name.startswith("pite."):
                raise ImportError("pite is not installed here: " + name)
            return None

    sys.meta_path.insert(0, BlockPite())
    try:
        import pite.processing  # noqa: F401
        raise SystemExit("the pite blocker does not work")
    except ImportError:
        pass
    """
)


def run_without_pite(script: str, args: list[str], workdir: Path) -> str:
    """Run `script` with `args` (its `sys.argv[1:]`) in a fresh interpreter where `pite` cannot be imported.

    The child runs in `workdir`, offline, on one thread, with its own remote-code module cache there. Returns its
    stdout; a non-zero exit fails the calling test with the end of the child's stderr.
    """
    env = {**os.environ, "HF_MODULES_CACHE": str(workdir / "modules"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    child = subprocess.run(
        [sys.executable, "-c", BLOCK_PITE + script, *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    return child.stdout


def release_style_ids(tokenizer, prompt: str, video_id: int, frames: int) -> list[int]:
    """The ids the authors' release builds for `prompt`, written out here independently of the package.

    yliu-cs/PiTe `utils/mm_utils.py: tokenizer_video_token`: split at "<video>", tokenize each chunk with the
    tokenizer's special tokens, keep BOS once, drop the first token of every later chunk; the model then puts
    the video's `frames` features where the one placeholder sits (here: `frames` `<video>` ids).
    """
    chunks = [tokenizer(chunk).input_ids for chunk in prompt.split("<video>")]
    has_bos = bool(chunks[0]) and chunks[0][0] == tokenizer.bos_token_id
    ids = list(chunks[0])
    for chunk in chunks[1:]:
        ids += [video_id] * frames + list(chunk[1:] if has_bos else chunk)
    return ids


def indexed_frame(index: int, width: int, height: int) -> np.ndarray:
    """uint8 (height, width, 3): grey background, frame index in binary blocks at the top-left."""
    if width < 8 * BLOCK or height < 2 * BLOCK:
        raise ValueError("frames must be at least 128x32 to hold the index blocks")
    frame = np.full((height, width, 3), 96, dtype=np.uint8)
    for bit in range(BITS):
        row, column = divmod(bit, 8)
        value = 255 if (index >> bit) & 1 else 0
        frame[row * BLOCK : (row + 1) * BLOCK, column * BLOCK : (column + 1) * BLOCK] = value
    return frame


def decode_frame_index(frame: np.ndarray) -> int:
    """Read the index back from a decoded frame (H, W, 3)."""
    index = 0
    for bit in range(BITS):
        row, column = divmod(bit, 8)
        block = frame[row * BLOCK + 3 : (row + 1) * BLOCK - 3, column * BLOCK + 3 : (column + 1) * BLOCK - 3]
        if block.mean() > 127:
            index |= 1 << bit
    return index


def write_indexed_video(
    path: str | os.PathLike, num_frames: int, fps: int = 10, width: int = 128, height: int = 32, codec: str = "libx264"
) -> str:
    """Write an mp4 of `num_frames` index-encoded frames with PyAV; returns the path."""
    import av

    with av.open(os.fspath(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(num_frames):
            frame = av.VideoFrame.from_ndarray(indexed_frame(index, width, height), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return os.fspath(path)


@pytest.fixture(scope="session")
def video_factory(tmp_path_factory):
    """`video_factory(num_frames, fps=10, width=128, height=32, codec="libx264")` -> path of a cached mp4."""
    folder = tmp_path_factory.mktemp("videos")

    def make(num_frames: int, fps: int = 10, width: int = 128, height: int = 32, codec: str = "libx264") -> str:
        path = folder / f"indexed_{num_frames}_{fps}_{width}x{height}_{codec}.mp4"
        if not path.exists():
            write_indexed_video(path, num_frames, fps, width, height, codec)
        return str(path)

    return make


@pytest.fixture(scope="session")
def frame_index_reader():
    """`decode_frame_index(frame)` for frames written by `video_factory`."""
    return decode_frame_index


@pytest.fixture(scope="session")
def indexed_frames():
    """`indexed_frames(num_frames, width=128, height=32)` -> uint8 (T, H, W, 3) index-encoded frames."""
    return lambda count, width=128, height=32: np.stack([indexed_frame(i, width, height) for i in range(count)])


@pytest.fixture(scope="session")
def tokenizer():
    from pite.demo.tokenizer import train_llama_tokenizer

    return train_llama_tokenizer(CORPUS * 10, vocab_size=400)


@pytest.fixture(scope="session")
def image_processor():
    from transformers import CLIPImageProcessorPil

    # 32 px crops keep the tests fast; resizing/cropping/normalising are the real CLIP code paths.
    return CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})


@pytest.fixture(scope="session")
def processor(image_processor, tokenizer):
    from pite.processing import PiTeProcessor

    return PiTeProcessor(image_processor=image_processor, tokenizer=tokenizer, num_frames=8)
