"""Parity with the authors' release: the ids and pixels `PiTeProcessor` gives equal the ones the release builds.

The release's inputs are written out here independently of the package, from yliu-cs/PiTe:
- frames (`utils/misc.py: extract_video`): decode every frame (torchvision's `read_video`, PyAV underneath), keep
  `np.linspace(0, T - 1, 100, dtype=np.int32)`, CLIP's image processor on those frames;
- ids (`utils/mm_utils.py: tokenizer_video_token`): split the prompt at "<video>", each chunk through a Llama
  SentencePiece tokenizer (transformers 4.37's slow legacy `LlamaTokenizer`, i.e. BOS + `sp.encode(chunk)`), BOS
  once, the video's features where the placeholder was.
The tokenizer is a Llama-style SentencePiece model trained here (BPE, byte fallback, dummy prefix, split digits,
identity normalisation), loaded through transformers' fast `LlamaTokenizer` (legacy and not) and a slow
SentencePiece class. Videos: H.264 with B-frames, MPEG-4 Part 2, VP9 in WebM, and H.264 with a variable frame rate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from fractions import Fraction

import numpy as np
import pytest
import torch

from pite.processing import PiTeProcessor

from .conftest import indexed_frame

av = pytest.importorskip("av")
spm = pytest.importorskip("sentencepiece")
pytest.importorskip("google.protobuf")

N = 12
PROMPT = (
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, "
    "and polite answers to the user's questions. USER: <video>\nWhat is moving in the video? ASSISTANT:"
)
CORPUS = [
    "A chat between a curious user and an artificial intelligence assistant.",
    "The assistant gives helpful, detailed, and polite answers to the user's questions.",
    "USER: What is moving in the video? ASSISTANT: the red circle moves to the left, from 12 to 45.",
    "During which frames can we see the blue square? From 03 to 27. Describe the video in detail.",
]


@pytest.fixture(scope="module")
def sentencepiece_model(tmp_path_factory) -> str:
    """A Llama-style SentencePiece model (unk 0, bos 1, eos 2, byte fallback, dummy prefix) trained offline."""
    folder = tmp_path_factory.mktemp("llama_sp")
    (folder / "corpus.txt").write_text("\n".join(CORPUS * 20))
    spm.SentencePieceTrainer.train(
        input=str(folder / "corpus.txt"),
        model_prefix=str(folder / "tokenizer"),
        vocab_size=400,
        model_type="bpe",
        byte_fallback=True,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        split_digits=True,
        add_dummy_prefix=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        character_coverage=1.0,
        minloglevel=2,
    )
    return str(folder / "tokenizer.model")


def _llama_tokenizer(kind: str, model_file: str):
    if kind == "slow (SentencePiece)":
        from transformers.tokenization_utils_sentencepiece import SentencePieceBackend

        tokenizer = SentencePieceBackend(
            vocab_file=model_file,
            bos_token="<s>",
            eos_token="</s>",
            unk_token="<unk>",
            legacy=True,
            special_tokens_pattern="bos",
        )
    else:
        from transformers import LlamaTokenizer

        # A Vicuna folder's layout: the SentencePiece model and a config; transformers converts it (protobuf).
        folder = tempfile.mkdtemp(prefix="llama_tok_")
        os.symlink(model_file, os.path.join(folder, "tokenizer.model"))
        with open(os.path.join(folder, "tokenizer_config.json"), "w") as handle:
            json.dump(
                {
                    "tokenizer_class": "LlamaTokenizer",
                    "legacy": kind == "fast, legacy",
                    "add_bos_token": True,
                    "add_eos_token": False,
                },
                handle,
            )
        tokenizer = LlamaTokenizer.from_pretrained(folder)
    tokenizer.add_special_tokens({"extra_special_tokens": ["<video>"]}, replace_extra_special_tokens=False)
    tokenizer.pad_token = tokenizer.unk_token
    tokenizer.padding_side = "left"
    return tokenizer


@pytest.fixture(scope="module", params=["fast, legacy", "fast, not legacy", "slow (SentencePiece)"])
def llama_tokenizer(request, sentencepiece_model):
    return _llama_tokenizer(request.param, sentencepiece_model)


def release_ids(model_file: str, prompt: str, video_id: int, frames: int) -> list[int]:
    """transformers 4.37's slow legacy LlamaTokenizer on each chunk is BOS + the SentencePiece encoding."""
    processor = spm.SentencePieceProcessor(model_file=model_file)
    first, *later = prompt.split("<video>")
    ids = [processor.bos_id()] + processor.encode(first)
    for chunk in later:
        ids += [video_id] * frames + processor.encode(chunk)
    return ids


def test_prompt_ids_are_the_releases(llama_tokenizer, sentencepiece_model, image_processor, indexed_frames):
    processor = PiTeProcessor(image_processor=image_processor, tokenizer=llama_tokenizer, num_frames=N)
    video_id = processor.video_token_id
    expected = release_ids(sentencepiece_model, PROMPT, video_id, N)
    got = processor(text=PROMPT, videos=indexed_frames(20))["input_ids"][0].tolist()
    assert got == expected
    # The chunk after the video starts with the dummy prefix: "▁" then the byte token of "\n".
    after = llama_tokenizer.convert_ids_to_tokens(got[got.index(video_id) + N : got.index(video_id) + N + 2])
    assert after == ["▁", "<0x0A>"]


# Encodes index-encoded frames; run in a child interpreter because once decord is imported (other test modules do),
# its bundled FFmpeg makes PyAV's libvpx-vp9 encoder fail to open ("Invalid argument").
ENCODE = """
import sys
from fractions import Fraction
import av
import numpy as np
path, codec, frames_file, times, numerator, denominator = sys.argv[1:]
time_base = Fraction(int(numerator), int(denominator))
frames = np.load(frames_file)
with av.open(path, "w") as container:
    stream = container.add_stream(codec, rate=int(round(1 / time_base)))
    stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
    stream.codec_context.time_base = time_base
    for array, pts in zip(frames, map(int, times.split(","))):
        frame = av.VideoFrame.from_ndarray(array, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
"""


def _write(path, codec: str, frame_times: list[int], time_base: Fraction) -> str:
    """Index-encoded 128x32 frames at `frame_times` (in `time_base` units), written by a fresh interpreter."""
    frames_file = f"{path}.frames.npy"
    np.save(frames_file, np.stack([indexed_frame(index, 128, 32) for index in range(len(frame_times))]))
    subprocess.run(
        [
            sys.executable,
            "-c",
            ENCODE,
            str(path),
            codec,
            frames_file,
            ",".join(map(str, frame_times)),
            str(time_base.numerator),
            str(time_base.denominator),
        ],
        check=True,
        capture_output=True,
    )
    return str(path)


@pytest.fixture(scope="module")
def release_videos(tmp_path_factory, video_factory):
    folder = tmp_path_factory.mktemp("release_videos")
    rng = np.random.default_rng(3)
    variable = np.cumsum(rng.integers(1, 5, size=37)).tolist()  # gaps of 1-4 ticks of 1/30 s
    return {
        "h264 with B-frames": video_factory(41, fps=10),
        "mpeg4": video_factory(33, fps=10, codec="mpeg4"),
        "vp9 in webm": _write(folder / "vp9.webm", "libvpx-vp9", list(range(29)), Fraction(1, 10)),
        "h264, variable frame rate": _write(folder / "vfr.mp4", "libx264", [0] + variable, Fraction(1, 30)),
    }


def release_pixels(path: str, image_processor) -> torch.Tensor:
    with av.open(path) as container:
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
    indices = np.linspace(0, len(frames) - 1, N, dtype=np.int32)
    return image_processor(list(frames[indices]), return_tensors="pt")["pixel_values"]


@pytest.mark.parametrize("backend", ["pyav", "decord"])
@pytest.mark.parametrize("video", ["h264 with B-frames", "mpeg4", "vp9 in webm", "h264, variable frame rate"])
def test_inputs_equal_the_releases(video, backend, release_videos, sentencepiece_model, image_processor):
    pytest.importorskip("decord" if backend == "decord" else "av")
    tokenizer = _llama_tokenizer("fast, legacy", sentencepiece_model)
    processor = PiTeProcessor(
        image_processor=image_processor, tokenizer=tokenizer, num_frames=N, video_backend=backend
    )
    path = release_videos[video]
    batch = processor(text=PROMPT, videos=path)
    assert batch["input_ids"][0].tolist() == release_ids(sentencepiece_model, PROMPT, processor.video_token_id, N)
    assert torch.equal(batch["pixel_values_videos"][0], release_pixels(path, image_processor))
