"""Fixtures for the training tests: a tiny PiTe with a real tokenizer and processor, and tiny data files in the
formats of DESIGN.md "Data files" (real mp4 videos via PyAV, JPEG images via PIL)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

NUM_FRAMES = 4
NUM_POINTS = 3
IMAGE_SIZE = 28
COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 200, 60), "yellow": (230, 220, 40)}
SHAPE_WORDS = ("square", "circle")


def _caption(colour: str, shape: str, direction: str) -> str:
    return f"the {colour} {shape} moves to the {direction}"


def corpus() -> list[str]:
    from pite.data import templates
    from pite.processing import V1_SYSTEM

    texts = [V1_SYSTEM, "USER: ASSISTANT: </s>", "from 00 to 03. From 01 to 02.", "During which frames can we see"]
    for colour in COLOURS:
        for shape in SHAPE_WORDS:
            for direction in ("left", "right"):
                texts.append(_caption(colour, shape, direction))
            texts.append(f"In this image we can see a {colour} {shape} on a grey table.")
    for name in dir(templates):
        value = getattr(templates, name)
        if isinstance(value, tuple):
            texts.extend(value)
    texts += ["What colour is the moving shape?", "It is red.", "How many shapes are there?", "There is one shape."]
    return texts * 5


@pytest.fixture(scope="session")
def tokenizer():
    from pite.demo.tokenizer import train_llama_tokenizer

    return train_llama_tokenizer(corpus(), vocab_size=360)


def tiny_processor(tokenizer):
    """A PiTeProcessor of `tokenizer` with a tiny CLIP image processor (IMAGE_SIZE px, NUM_FRAMES frames)."""
    from transformers import CLIPImageProcessorPil

    from pite.processing import PiTeProcessor

    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    return PiTeProcessor(image_processor=image_processor, tokenizer=tokenizer, num_frames=NUM_FRAMES)


def tiny_config(tokenizer, text_layers: int = 2, **overrides):
    """The tiny PiTeConfig matching `tokenizer` (also used by tests/cli)."""
    from pite.modeling_pite import PiTeConfig

    kwargs = dict(
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            projection_dim=24,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=IMAGE_SIZE,
            patch_size=14,
        ),
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=text_layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        ),
        num_frames=NUM_FRAMES,
        num_trajectory_points=NUM_POINTS,
        video_token_id=tokenizer.convert_tokens_to_ids("<video>"),
    )
    kwargs.update(overrides)
    return PiTeConfig(**kwargs)


@pytest.fixture(scope="session")
def processor(tokenizer):
    return tiny_processor(tokenizer)


@pytest.fixture(scope="session")
def make_model(tokenizer):
    """`make_model(seed=0, **config_overrides)` -> a fresh tiny PiTeForConditionalGeneration matching the tokenizer."""
    from pite.modeling_pite import PiTeForConditionalGeneration

    def make(seed: int = 0, **overrides):
        config = tiny_config(tokenizer, **overrides)
        torch.manual_seed(seed)
        return PiTeForConditionalGeneration(config)

    return make


@pytest.fixture(scope="session")
def base_checkpoint(tmp_path_factory, make_model, processor):
    """Folder of an untrained tiny PiTe + its processor (the input of stage 1)."""
    folder = tmp_path_factory.mktemp("base")
    make_model().save_pretrained(folder)
    processor.save_pretrained(folder)
    return str(folder)


# ----------------------------------------------------------------------------------------------- data files
def write_video(path: str, colour: tuple[int, int, int], direction: int, num_frames: int = 8, size: int = 32) -> None:
    """An mp4 of a coloured square moving horizontally on grey (PyAV, mpeg4 codec)."""
    import av

    with av.open(path, "w") as container:
        stream = container.add_stream("mpeg4", rate=4)
        stream.width, stream.height, stream.pix_fmt = size, size, "yuv420p"
        for t in range(num_frames):
            frame = np.full((size, size, 3), 128, dtype=np.uint8)
            x = 4 + (t * 2 if direction > 0 else 14 - t * 2)
            frame[12:20, x : x + 8] = colour
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_image(path: str, colour: tuple[int, int, int], left: bool) -> None:
    from PIL import Image

    image = np.full((32, 32, 3), 128, dtype=np.uint8)
    image[10:22, (2 if left else 18) : (14 if left else 30)] = colour
    Image.fromarray(image).save(path, quality=95)


def _write_json(path: str, value, lines: bool = False) -> str:
    with open(path, "w", encoding="utf-8") as handle:
        if lines:
            handle.write("".join(json.dumps(item) + "\n" for item in value))
        else:
            json.dump(value, handle)
    return path


def trajectory(direction: int, start_frame: int = 0) -> list:
    """(P, N, 2) key points of a horizontally moving object; -1 before `start_frame`."""
    out = np.full((NUM_POINTS, NUM_FRAMES, 2), -1.0)
    for n in range(start_frame, NUM_FRAMES):
        x = 0.3 + 0.1 * n if direction > 0 else 0.7 - 0.1 * n
        for p in range(NUM_POINTS):
            out[p, n] = (x + 0.02 * p, 0.5)
    return out.round(4).tolist()


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """Tiny data of all three stages. Returns a dict of paths."""
    root = tmp_path_factory.mktemp("world")
    images, videos = root / "images", root / "videos"
    images.mkdir()
    videos.mkdir()
    narratives, pite_records, valley, videoinstruct = [], [], [], []
    for index, (colour, rgb) in enumerate(COLOURS.items()):
        shape = SHAPE_WORDS[index % 2]
        image_id = f"img{index}"
        write_image(str(images / f"{image_id}.jpg"), rgb, left=index % 2 == 0)
        first = f"In this image we can see a {colour} {shape}"
        caption = f"{first} on a grey table."
        x = 0.25 if index % 2 == 0 else 0.75
        narratives.append(
            {
                "dataset_id": "synthetic",
                "image_id": image_id,
                "annotator_id": 0,
                "caption": caption,
                "timed_caption": [
                    {"utterance": first, "start_time": 0.0, "end_time": 1.0},
                    {"utterance": "on a grey table.", "start_time": 1.0, "end_time": 2.0},
                ],
                "traces": [
                    [
                        {"x": x, "y": 0.5, "t": 0.2},
                        {"x": x + 0.02, "y": 0.52, "t": 0.6},
                        {"x": 0.5, "y": 0.9, "t": 1.5},
                    ]
                ],
                "voice_recording": "",
            }
        )
        direction = 1 if index % 2 == 0 else -1
        video_id = f"vid{index}"
        write_video(str(videos / f"{video_id}.mp4"), rgb, direction)
        words = "right" if direction > 0 else "left"
        caption = _caption(colour, shape, words)
        phrase = f"the {colour} {shape}"
        pite_records.append(
            {
                "video_id": video_id,
                "video": f"{video_id}.mp4",
                "duration": 2.0,
                "events": [
                    {
                        "caption": caption,
                        "start": 0.0,
                        "end": 2.0,
                        "objects": [{"phrase": phrase, "span": [0, len(phrase)], "trajectory": trajectory(direction)}],
                    },
                    {
                        "caption": f"{phrase} moves to the {words}",
                        "start": 1.0,
                        "end": 2.0,
                        "objects": [
                            {"phrase": phrase, "span": [0, len(phrase)], "trajectory": trajectory(direction, 2)}
                        ],
                    },
                ],
            }
        )
        valley.append(
            {
                "id": f"valley{index}",
                "source": "synthetic",
                "v_id": video_id,
                "video": f"{video_id}.mp4",
                "conversations": [
                    {"from": "human", "value": "<video>\nWhat colour is the moving shape?"},
                    {"from": "gpt", "value": f"It is {colour}."},
                ],
            }
        )
        videoinstruct.append({"video_id": video_id, "q": "How many shapes are there?", "a": "There is one shape."})
    return {
        "root": str(root),
        "images": str(images),
        "videos": str(videos),
        "narratives": _write_json(str(root / "narratives.jsonl"), narratives, lines=True),
        "pite": _write_json(str(root / "pite.jsonl"), pite_records, lines=True),
        "valley": _write_json(str(root / "valley.json"), valley),
        "videoinstruct": _write_json(str(root / "videoinstruct.json"), videoinstruct),
    }


# Overrides every test run uses: CPU, fp32, tiny batches, no checkpointing unless a test asks for it.
CPU_OVERRIDES = dict(
    use_cpu=True,
    bf16=False,
    gradient_checkpointing=False,
    per_device_train_batch_size=2,
    per_device_eval_batch_size=2,
    global_batch_size=None,
    gradient_accumulation_steps=1,
    dataloader_num_workers=0,
    lora_r=4,
    lora_alpha=8,
    logging_steps=1,
    save_strategy="no",
    learning_rate=5e-3,
    warmup_steps=0,
    num_train_epochs=1,
    max_length=256,
    report_to="none",
    seed=0,
    data_seed=0,
    disable_tqdm=True,
)


@pytest.fixture(scope="session")
def cpu_overrides():
    return dict(CPU_OVERRIDES)


@pytest.fixture(scope="session")
def stage_data(world):
    """stage -> (data_files, media_dir) of the tiny world."""
    return {
        1: ([world["narratives"]], world["images"]),
        2: ([world["pite"]], world["videos"]),
        3: ([world["valley"], world["videoinstruct"]], world["videos"]),
    }


def pytest_configure(config):
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def dims():
    """Sizes of the tiny world: N frames, P points, image size."""
    from types import SimpleNamespace

    return SimpleNamespace(frames=NUM_FRAMES, points=NUM_POINTS, image_size=IMAGE_SIZE)


@pytest.fixture(scope="session")
def make_trajectory():
    """`make_trajectory(direction, start_frame=0)` -> the (P, N, 2) list the world files hold."""
    return trajectory
