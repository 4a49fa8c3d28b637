"""With torchvision and without `pite`: a checkpoint saved as the demo saves it loads through `AutoVideoProcessor` and
`AutoProcessor` (trust_remote_code), gives the pixels `pite`'s `PiTeVideoProcessor` gives, and takes `max_length` /
`truncation` / `padding_side` as LLaVA's processor does on the same tokenizer.

transformers gates `AutoVideoProcessor` on torchvision, which has no build for the project's CPU torch pin, so the
check runs in a child interpreter of a side virtual environment made by `tests/torchvision_venv.py` (torch and
torchvision, the main environment's transformers, no pite). The test command creates it and names it in
PITE_TORCHVISION_VENV: then a missing or broken environment fails the test. Without the variable the test looks for
`.venv-torchvision` in the repository and skips, saying how to create it, where there is none.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from .conftest import CORPUS, write_indexed_video

ENV_VAR = "PITE_TORCHVISION_VENV"
REPOSITORY = Path(__file__).resolve().parents[2]
DEFAULT_VENV = REPOSITORY / ".venv-torchvision"
CREATE = ".venv/bin/python tests/torchvision_venv.py .venv-torchvision"
NUM_FRAMES = 8
IMAGE_SIZE = 32
# A space after <video>: the text's whole-string tokenization (LLaVA's) then equals PiTe's chunked one (the
# release's), so the ids can be compared token for token. After "<video>\n" (the chat template's) the two differ by
# design in one "▁" token (tests/processing/test_release_parity.py).
TEXTS = ["USER: <video> What moves? ASSISTANT:", "USER: <video> What is moving in the video? ASSISTANT:"]


def side_python() -> Path:
    """The side environment's interpreter; skips where it is absent and not required."""
    named = os.environ.get(ENV_VAR)
    if named:
        python = Path(named).absolute() / "bin" / "python"
        assert python.is_file(), f"{ENV_VAR}={named} but {python} does not exist: create it with `{CREATE}`"
        return python
    python = DEFAULT_VENV / "bin" / "python"
    if not python.is_file():
        pytest.skip(
            f"no torchvision environment at {DEFAULT_VENV} (transformers' AutoVideoProcessor needs "
            f"torchvision, which has no build for the CPU torch pin): create it with `{CREATE}`, or set "
            f"{ENV_VAR}; the README's test command does both"
        )
    return python


# Run by the side environment's interpreter: argv = checkpoint folder, mp4 path, inputs (.npz), output file.
CHILD = textwrap.dedent(
    """
    import copy
    import importlib.util
    import sys

    assert importlib.util.find_spec("pite") is None, "pite is importable in the torchvision environment"

    import numpy as np
    import torch
    import torchvision
    import transformers
    from transformers import AutoProcessor, AutoVideoProcessor, LlavaNextImageProcessor, LlavaNextVideoProcessor
    from transformers.models.llava_next_video.video_processing_llava_next_video import LlavaNextVideoVideoProcessor

    folder, video_path, inputs_path, out = sys.argv[1:5]
    TEXTS = {texts!r}
    inputs = np.load(inputs_path)
    result = {{"versions": {{"torch": str(torch.__version__), "torchvision": str(torchvision.__version__),
                             "transformers": transformers.__version__}}}}

    video_processor = AutoVideoProcessor.from_pretrained(folder, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    result["classes"] = [f"{{type(item).__module__}}.{{type(item).__qualname__}}"
                         for item in (video_processor, processor, processor.video_processor)]
    from_file = video_processor(video_path, return_metadata=True, return_tensors="pt")
    result["file_pixels"] = from_file["pixel_values_videos"]
    result["file_metadata"] = dict(from_file["video_metadata"][0])
    result["array_pixels"] = video_processor(inputs["frames"], return_tensors="pt")["pixel_values_videos"]

    # LLaVA-NeXT-Video on the same tokenizer, one token per frame: (crop / patch)^2 / 4 = 1. Its <image> token is
    # added to a copy so that it is not the pad token (which LLaVA's truncation check would count as images).
    crop = processor.video_processor.crop_size.height
    llava_tokenizer = copy.deepcopy(processor.tokenizer)
    llava_tokenizer.add_tokens(["<image>"], special_tokens=True)
    llava = LlavaNextVideoProcessor(
        video_processor=LlavaNextVideoVideoProcessor(size={{"shortest_edge": crop}},
                                                     crop_size={{"height": crop, "width": crop}},
                                                     do_sample_frames=False),
        image_processor=LlavaNextImageProcessor(), tokenizer=llava_tokenizer, patch_size=crop // 2)
    # as many frames as PiTe samples: LLaVA's processor (do_sample_frames=False) then sees the same frames
    videos = [inputs["video_0"], inputs["video_1"]]
    unpadded = processor(text=TEXTS, videos=videos, padding=False, return_tensors=None)["input_ids"]
    first_video = unpadded[0].index(processor.video_token_id)
    calls = {{
        "padding=True on the tokenizer's side": dict(padding=True),
        "left, to max_length": dict(padding="max_length", max_length=max(map(len, unpadded)) + 3, truncation=True,
                                    padding_side="left"),
        "right, to max_length": dict(padding="max_length", max_length=max(map(len, unpadded)) + 3,
                                     truncation=True, padding_side="right"),
        "right, in text_kwargs": dict(text_kwargs={{"padding": True, "padding_side": "right"}}),
        "truncating the text's end": dict(padding=True, max_length=min(map(len, unpadded)) - 2, truncation=True,
                                          padding_side="left"),
        "truncating into the video": dict(padding=True, max_length=first_video + 3, truncation=True,
                                          padding_side="left"),
    }}
    result["unpadded"], result["first_video"], result["calls"] = unpadded, first_video, {{}}
    for name, kwargs in calls.items():
        outputs = {{}}
        for who, callee in (("pite", processor), ("llava", llava)):
            try:
                batch = callee(text=TEXTS, videos=videos, **kwargs)
            except ValueError as error:
                outputs[who] = {{"error": str(error)}}
            else:
                outputs[who] = {{"input_ids": batch["input_ids"].tolist(),
                                 "attention_mask": batch["attention_mask"].tolist(),
                                 "pixel_shape": list(batch["pixel_values_videos"].shape)}}
                if who == "pite":
                    outputs[who]["pixel_values_videos"] = batch["pixel_values_videos"]
        result["calls"][name] = {{"kwargs": kwargs, **outputs}}
    torch.save(result, out)
    """
)


@pytest.fixture(scope="module")
def demo_checkpoint(tmp_path_factory) -> Path:
    """A tiny random PiTe and its processor, built and saved as `pite demo` builds and saves its `model/`."""
    from pite.demo.pipeline import DemoSettings, build_processor, build_tiny_config
    from pite.modeling_pite import PiTeForConditionalGeneration

    settings = DemoSettings(
        num_frames=NUM_FRAMES, vocab_size=400, image_size=IMAGE_SIZE, patch_size=16, vision_hidden=32, text_hidden=32
    )
    processor = build_processor(settings, CORPUS * 10)
    tokenizer = processor.tokenizer
    special_ids = dict(
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id
    )
    torch.manual_seed(0)
    model = PiTeForConditionalGeneration(
        build_tiny_config(settings, len(tokenizer), processor.video_token_id, special_ids)
    )
    folder = tmp_path_factory.mktemp("torchvision") / "model"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def make_inputs() -> dict[str, np.ndarray]:
    """Decoded-frame inputs of both interpreters: one clip to sample from, two videos of NUM_FRAMES frames."""
    rng = np.random.default_rng(0)
    return {
        "frames": rng.integers(0, 256, size=(11, 50, 70, 3), dtype=np.uint8),
        "video_0": rng.integers(0, 256, size=(NUM_FRAMES, 40, 60, 3), dtype=np.uint8),
        "video_1": rng.integers(0, 256, size=(NUM_FRAMES, 50, 40, 3), dtype=np.uint8),
    }


@pytest.fixture(scope="module")
def child(demo_checkpoint, tmp_path_factory) -> dict:
    """What the side environment's interpreter got from the checkpoint (see CHILD)."""
    python = side_python()
    workdir = tmp_path_factory.mktemp("torchvision-child")
    video = write_indexed_video(workdir / "clip.mp4", 40, fps=10, width=160, height=48)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "HF_HOME": str(workdir / "hf"),
        "HF_MODULES_CACHE": str(workdir / "modules"),
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    out, inputs = workdir / "result.pt", workdir / "inputs.npz"
    np.savez(inputs, **make_inputs())
    done = subprocess.run(
        [str(python), "-c", CHILD.format(texts=TEXTS), str(demo_checkpoint), video, str(inputs), str(out)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"the torchvision child ({python}) failed:\n{done.stderr[-4000:]}"
    return {**torch.load(out, weights_only=True), "video": video}


def test_saved_folder_registers_the_video_processor_and_imports_no_pite(demo_checkpoint):
    from transformers.dynamic_module_utils import get_imports

    config = json.loads((demo_checkpoint / "processor_config.json").read_text())
    assert config["auto_map"]["AutoProcessor"] == "processing_pite.PiTeProcessor"
    # transformers 5.24 nests the video processor's config (with its auto_map) in processor_config.json
    assert config["video_processor"]["auto_map"]["AutoVideoProcessor"] == "video_processing_pite.PiTeVideoProcessor"
    assert config["video_processor"]["video_processor_type"] == "PiTeVideoProcessor"
    allowed = {"torch", "transformers", "numpy", "PIL"} | set(sys.stdlib_module_names)
    for path in demo_checkpoint.glob("*.py"):
        assert set(get_imports(path)) <= allowed, (path.name, get_imports(path))
        assert "import pite" not in path.read_text() and "from pite" not in path.read_text(), path.name


def test_auto_video_processor_gives_pites_pixels_without_pite(child, demo_checkpoint):
    from transformers import __version__

    from pite.processing import PiTeVideoProcessor

    assert child["versions"]["transformers"] == __version__
    # AutoVideoProcessor, AutoProcessor and the processor's video processor: the checkpoint's own copies
    assert [name.rsplit(".", 1)[-1] for name in child["classes"]] == [
        "PiTeVideoProcessor",
        "PiTeProcessor",
        "PiTeVideoProcessor",
    ]
    assert all(name.startswith("transformers_modules.") for name in child["classes"]), child["classes"]

    local = PiTeVideoProcessor.from_pretrained(demo_checkpoint)
    expected = local(child["video"], return_metadata=True, return_tensors="pt")
    assert child["file_pixels"].shape == (1, NUM_FRAMES, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert torch.equal(child["file_pixels"], expected["pixel_values_videos"])
    assert child["file_metadata"] == dict(expected["video_metadata"][0])
    frames = make_inputs()["frames"]
    assert torch.equal(child["array_pixels"], local(frames, return_tensors="pt")["pixel_values_videos"])


def test_auto_processor_kwargs_behave_as_llavas(child, demo_checkpoint):
    from pite.processing import PiTeProcessor

    unpadded, first_video, calls = child["unpadded"], child["first_video"], child["calls"]
    shortest = min(map(len, unpadded))
    assert len(set(map(len, unpadded))) == 2  # different lengths, so that padding shows
    assert shortest - 2 > first_video + NUM_FRAMES  # the end-of-text cut keeps every video token
    local = PiTeProcessor.from_pretrained(demo_checkpoint)
    inputs = make_inputs()
    videos = [inputs["video_0"], inputs["video_1"]]
    assert len(calls) == 6, sorted(calls)
    for name, call in calls.items():
        pite, llava = call["pite"], call["llava"]
        if name == "truncating into the video":
            assert pite["error"].startswith("Mismatch in `video` token count between text and `input_ids`"), pite
            assert llava["error"].startswith("Mismatch in `video` token count between text and `input_ids`"), llava
            continue
        assert "error" not in pite and "error" not in llava, (name, pite, llava)
        assert pite["input_ids"] == llava["input_ids"], name
        assert pite["attention_mask"] == llava["attention_mask"], name
        assert pite["pixel_shape"] == llava["pixel_shape"] == [2, NUM_FRAMES, 3, IMAGE_SIZE, IMAGE_SIZE], name
        # the remote-code processor gives what pite's gives, pixels included
        expected = local(text=TEXTS, videos=videos, **call["kwargs"])
        assert pite["input_ids"] == expected["input_ids"].tolist(), name
        assert pite["attention_mask"] == expected["attention_mask"].tolist(), name
        assert torch.equal(pite["pixel_values_videos"], expected["pixel_values_videos"]), name

    left, right = calls["left, to max_length"]["pite"], calls["right, to max_length"]["pite"]
    length = max(map(len, unpadded)) + 3
    for row, ids in enumerate(unpadded):
        pad = length - len(ids)
        assert left["input_ids"][row][pad:] == ids and left["attention_mask"][row] == [0] * pad + [1] * len(ids)
        assert (
            right["input_ids"][row][: len(ids)] == ids and right["attention_mask"][row] == [1] * len(ids) + [0] * pad
        )
    cut = calls["truncating the text's end"]["pite"]
    assert cut["input_ids"] == [ids[: shortest - 2] for ids in unpadded]
    assert cut["attention_mask"] == [[1] * (shortest - 2)] * 2
