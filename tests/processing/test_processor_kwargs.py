"""PiTeProcessor on transformers' kwargs rails: LLaVA-style max_length/truncation/padding_side, per-modality kwargs,
the tokenizer's own defaults, images by path in the chat template, and folders saved before the video processor."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from pite.processing import PiTeProcessor, PiTeVideoProcessor

from .conftest import release_style_ids

N = 8  # the fixture processor's num_frames
TEXTS = ["USER: <video>\nWhat moves? ASSISTANT:", "USER: <video>\nWhat is moving in the video? ASSISTANT:"]


@pytest.fixture(scope="module")
def videos(indexed_frames):
    return [indexed_frames(12), indexed_frames(20)]


def test_max_length_padding_side_and_truncation_as_for_llava(processor, tokenizer, videos):
    video_id = processor.video_token_id
    expected = [release_style_ids(tokenizer, text, video_id, N) for text in TEXTS]
    longest = max(map(len, expected))

    padded = processor(
        text=TEXTS,
        videos=videos,
        video_fps=5,
        padding="max_length",
        max_length=longest + 3,
        truncation=True,
        padding_side="left",
    )
    assert padded["input_ids"].shape == (2, longest + 3)
    for row, ids in enumerate(expected):
        assert padded["input_ids"][row, -len(ids) :].tolist() == ids
        assert padded["attention_mask"][row].tolist() == [0] * (longest + 3 - len(ids)) + [1] * len(ids)

    right = processor(text=TEXTS, videos=videos, video_fps=5, padding_side="right")
    assert right["input_ids"][0, : len(expected[0])].tolist() == expected[0]
    assert right["attention_mask"][0, len(expected[0]) :].eq(0).all()

    keep = len(expected[0]) - 2  # cuts the end of the text, keeps every <video> token
    cut = processor(text=TEXTS[0], videos=videos[0], video_fps=5, max_length=keep, truncation=True)
    assert cut["input_ids"][0].tolist() == expected[0][:keep]
    with pytest.raises(ValueError, match=r"Mismatch in `video` token count.*keeps \[3\] of \[8\]"):
        processor(
            text=TEXTS[0], videos=videos[0], video_fps=5, max_length=expected[0].index(video_id) + 3, truncation=True
        )


def test_modality_kwargs_are_honoured_and_doubly_passed_ones_refused(processor, videos, indexed_frames):
    out = processor(
        text=TEXTS[0],
        videos=videos[0],
        videos_kwargs={"num_frames": 4, "video_fps": 5},
        text_kwargs={"padding_side": "right"},
    )
    assert out["pixel_values_videos"].shape[1] == 4 and (out["input_ids"] == processor.video_token_id).sum() == 4
    assert out["video_metadata"][0].frames_indices == np.linspace(0, 11, 4, dtype=np.int32).tolist()

    frame = indexed_frames(1, width=200, height=64)[0]
    flat = processor(text="<video> a", images=frame, crop_size={"height": 16, "width": 24})
    nested = processor(text="<video> a", images=frame, images_kwargs={"crop_size": {"height": 16, "width": 24}})
    assert flat["pixel_values"].shape == nested["pixel_values"].shape == (1, 3, 16, 24)
    assert processor(text="<video> a", images=frame)["pixel_values"].shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="num_frames was passed two times"):
        processor(text=TEXTS[0], videos=videos[0], num_frames=3, videos_kwargs={"num_frames": 4})


def test_the_tokenizers_own_defaults_win_over_the_processors(image_processor, tokenizer, videos):
    import copy

    right_tokenizer = copy.deepcopy(tokenizer)
    right_tokenizer.padding_side = "right"
    right_tokenizer.init_kwargs["padding_side"] = "right"
    processor = PiTeProcessor(image_processor=image_processor, tokenizer=right_tokenizer, num_frames=N)
    out = processor(text=TEXTS, videos=videos, video_fps=5)
    assert out["attention_mask"][0, 0] == 1 and out["attention_mask"][0, -1] == 0  # padded on the right
    # a call kwarg still overrides the tokenizer's default
    left = processor(text=TEXTS, videos=videos, video_fps=5, padding_side="left")
    assert left["attention_mask"][0, 0] == 0


def test_outputs_tensor_types_and_metadata_switch(processor, videos):
    as_numpy = processor(text=TEXTS, videos=videos, video_fps=5, return_tensors="np")
    assert isinstance(as_numpy["input_ids"], np.ndarray) and isinstance(as_numpy["pixel_values_videos"], np.ndarray)
    as_lists = processor(text=TEXTS, videos=videos, video_fps=5, return_tensors=None)
    assert isinstance(as_lists["input_ids"], list) and len(as_lists["input_ids"][0]) == len(as_lists["input_ids"][1])
    assert "video_metadata" in processor.model_input_names and "pixel_values_videos" in processor.model_input_names
    without = processor(text=TEXTS, videos=videos, video_fps=5, return_metadata=False)
    assert "video_metadata" not in without and "pixel_values_videos" in without
    no_bos = processor(text=TEXTS[0], videos=videos[0], video_fps=5, add_special_tokens=False)["input_ids"][0]
    assert no_bos[0] != processor.tokenizer.bos_token_id
    with pytest.raises(ValueError, match=r"does not support the text kwargs \['return_overflowing_tokens'\]"):
        processor(text=TEXTS[0], videos=videos[0], video_fps=5, return_overflowing_tokens=True)


def test_apply_chat_template_reads_an_image_given_by_path(processor, indexed_frames, tmp_path):
    path = tmp_path / "frame.png"
    Image.fromarray(indexed_frames(1, width=200, height=64)[0]).save(path)
    messages = [{"role": "user", "content": [{"type": "image", "path": str(path)}, {"type": "text", "text": "What?"}]}]
    batch = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    expected = processor(text="<video> a", images=Image.open(path))["pixel_values"]
    torch.testing.assert_close(batch["pixel_values"], expected, rtol=0, atol=0)
    assert (batch["input_ids"] == processor.video_token_id).sum() == 1
    assert (batch["video_metadata"][0].width, batch["video_metadata"][0].height) == (200, 64)


def test_folders_saved_before_the_video_processor_keep_loading(processor, tmp_path, videos):
    processor.save_pretrained(tmp_path)
    config_path = tmp_path / "processor_config.json"
    config = json.loads(config_path.read_text())
    # The layout the previous PiTeProcessor wrote: no video processor, N and the backend at the top level.
    del config["video_processor"]
    config.update(num_frames=5, video_backend="pyav")
    config_path.write_text(json.dumps(config))
    loaded = PiTeProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded.video_processor, PiTeVideoProcessor)
    assert (loaded.num_frames, loaded.video_backend) == (5, "pyav")
    same = processor(text=TEXTS[0], videos=videos[0], video_fps=5, num_frames=5)
    again = loaded(text=TEXTS[0], videos=videos[0], video_fps=5)
    assert torch.equal(same["pixel_values_videos"], again["pixel_values_videos"])
    assert torch.equal(same["input_ids"], again["input_ids"])

    del config["image_processor"]
    config_path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="holds no PiTe image or video processor config.*re-export it"):
        PiTeProcessor.from_pretrained(tmp_path)


def test_new_folders_round_trip_the_video_processor(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    loaded = PiTeProcessor.from_pretrained(tmp_path, video_backend="decord")
    assert loaded.video_processor.to_dict() | {"video_backend": "auto"} == processor.video_processor.to_dict()
    assert loaded.video_backend == "decord" and loaded.num_frames == N


def test_token_counts_helper_and_mm_token_type_ids_agree(processor, videos, indexed_frames):
    out = processor(text=TEXTS, videos=videos, video_fps=5, return_mm_token_type_ids=True)
    counts = processor._get_num_multimodal_tokens(video_sizes=[video.shape[:3] for video in videos])
    assert (out["mm_token_type_ids"] == 2).sum(-1).tolist() == counts["num_video_tokens"] == [N, N]
    assert out["mm_token_type_ids"].eq(2).equal(out["input_ids"].eq(processor.video_token_id))
    frame = indexed_frames(1)[0]
    images = processor(text=["<video> a", "<video> b"], images=[frame, frame], return_mm_token_type_ids=True)
    assert (images["mm_token_type_ids"] == 1).sum(-1).tolist() == processor._get_num_multimodal_tokens(
        image_sizes=[(32, 128)] * 2
    )["num_image_tokens"]
