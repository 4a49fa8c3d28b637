"""PiTeProcessor: batching videos/images with text, <video> expansion, the v1 chat template, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pite.processing import V1_SYSTEM, PiTeProcessor, read_video

from .conftest import release_style_ids

N = 8  # the fixture processor's num_frames


def test_defaults(image_processor, tokenizer):
    processor = PiTeProcessor(image_processor=image_processor, tokenizer=tokenizer)
    assert processor.num_frames == 100 and processor.video_token == "<video>"
    assert processor.video_token_id == tokenizer.convert_tokens_to_ids("<video>")


def test_batch_of_videos_of_different_lengths_and_sizes(processor, tokenizer, video_factory, frame_index_reader):
    long_video = video_factory(40, fps=10, width=160, height=48)
    short_video = video_factory(5, fps=5)
    texts = ["USER: <video>\nWhat moves? ASSISTANT:", "USER: <video>\nWhat is moving in the video? ASSISTANT:"]
    batch = processor(text=texts, videos=[long_video, short_video])

    assert batch["pixel_values_videos"].shape == (2, N, 3, 32, 32)
    assert batch["pixel_values_videos"].dtype == torch.float32
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert ids.shape == mask.shape and ids.shape[0] == 2
    video_id = processor.video_token_id
    for row in range(2):
        positions = (ids[row] == video_id).nonzero().flatten()
        assert len(positions) == N and (positions.diff() == 1).all()  # N consecutive <video> tokens
    # left padding: the shorter prompt is padded at the start, and unpadded ids are the release's chunked ids
    lengths = mask.sum(dim=1)
    assert lengths[0] < lengths[1] and mask[0, : ids.shape[1] - lengths[0]].eq(0).all()
    expanded = ids[0, mask[0].bool()].tolist()
    assert expanded == release_style_ids(tokenizer, texts[0], video_id, N)

    metadata = batch["video_metadata"]
    assert [m["num_source_frames"] for m in metadata] == [40, 5]
    assert [(m["width"], m["height"]) for m in metadata] == [(160, 48), (128, 32)]
    assert metadata[1]["frame_indices"] == [0, 0, 1, 1, 2, 2, 3, 4]  # int(linspace(0, 4, 8))
    assert metadata[1]["timestamps"] == pytest.approx([0, 0, 0.2, 0.2, 0.4, 0.4, 0.6, 0.8])
    # the pixels are exactly the CLIP-processed sampled frames
    frames = read_video(long_video, N).frames
    assert [frame_index_reader(f) for f in frames] == metadata[0]["frame_indices"]
    expected = processor.image_processor(list(frames), return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(batch["pixel_values_videos"][0], expected)


def test_nested_per_sample_videos_and_numpy_output(processor, indexed_frames):
    video = indexed_frames(12)
    batch = processor(
        text=["<video> a", "<video> b <video>"],
        videos=[[video], [video, video]],
        video_fps=[4, 4, 4],
        return_tensors="np",
    )
    assert batch["pixel_values_videos"].shape == (3, N, 3, 32, 32)
    assert isinstance(batch["input_ids"], np.ndarray)
    assert (batch["input_ids"] == processor.video_token_id).sum(axis=1).tolist() == [N, 2 * N]
    assert batch["video_metadata"][2]["timestamps"][-1] == pytest.approx(11 / 4)


def test_images_are_one_frame_videos(processor, indexed_frames):
    frame = indexed_frames(1, width=200, height=64)[0]
    batch = processor(text=["<video>\nDescribe.", "<video>\nDescribe it."], images=[frame, Image.fromarray(frame)])
    assert batch["pixel_values"].shape == (2, 3, 32, 32)
    assert "pixel_values_videos" not in batch
    assert (batch["input_ids"] == processor.video_token_id).sum(dim=1).tolist() == [1, 1]
    assert batch["video_metadata"][0]["width"] == 200 and batch["video_metadata"][0]["num_source_frames"] == 1
    torch.testing.assert_close(batch["pixel_values"][0], batch["pixel_values"][1])


def test_videos_only_for_feature_extraction(processor, video_factory):
    batch = processor(videos=video_factory(30))
    assert set(batch) == {"pixel_values_videos", "video_metadata"}


# ---------------------------------------------------------------- chat template
MESSAGES = [
    {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What is moving?"}]},
    {"role": "assistant", "content": "the red circle."},
    {"role": "user", "content": [{"type": "text", "text": "When?"}]},
    {"role": "assistant", "content": [{"type": "text", "text": "from 10 to 45."}]},
]


def test_chat_template_renders_llava_v1(processor):
    expected = (
        f"{V1_SYSTEM} USER: <video>\nWhat is moving? ASSISTANT: the red circle.</s>"
        "USER: When? ASSISTANT: from 10 to 45.</s>"
    )
    assert V1_SYSTEM == (
        "A chat between a curious user and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the user's questions."
    )
    assert processor.apply_chat_template(MESSAGES) == expected
    prompt = processor.apply_chat_template(MESSAGES[:1], add_generation_prompt=True)
    assert prompt == f"{V1_SYSTEM} USER: <video>\nWhat is moving? ASSISTANT:"
    system = [{"role": "system", "content": "Be brief."}, *MESSAGES[:1]]
    assert processor.apply_chat_template(system).startswith("Be brief. USER: <video>\n")


def test_chat_template_tokenize_reads_the_video(processor, video_factory):
    path = video_factory(30)
    messages = [
        {"role": "user", "content": [{"type": "video", "path": path}, {"type": "text", "text": "What moves?"}]}
    ]
    batch = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    assert batch["pixel_values_videos"].shape == (1, N, 3, 32, 32)
    assert (batch["input_ids"] == processor.video_token_id).sum() == N
    assert batch["input_ids"][0, 0] == processor.tokenizer.bos_token_id
    assert processor.decode(batch["input_ids"][0], skip_special_tokens=True).endswith("What moves? ASSISTANT:")
    assert batch["video_metadata"][0]["num_source_frames"] == 30


# ---------------------------------------------------------------- bad input
def test_placeholder_count_mismatch_names_both_counts(processor, indexed_frames):
    video = indexed_frames(4)
    with pytest.raises(ValueError, match=r"0 <video> placeholder\(s\).*but 1 video"):
        processor(text="What moves?", videos=video, video_fps=2)
    with pytest.raises(ValueError, match=r"1 <video> placeholder\(s\).*but 2 video"):
        processor(text="<video> What moves?", videos=[video, video])
    with pytest.raises(ValueError, match=r"2 <video> placeholder\(s\).*\[1, 1\].*but 0 video"):
        processor(text=["<video> a", "<video> b"])


def test_other_bad_calls(processor, indexed_frames):
    frame = indexed_frames(1)[0]
    with pytest.raises(ValueError, match="either videos or images"):
        processor(text="<video>", videos=indexed_frames(3), images=frame)
    with pytest.raises(TypeError, match="unexpected arguments.*colour"):
        processor(text="hi", colour=True)
    with pytest.raises(ValueError, match="3 video_fps values for 1 videos"):
        processor(text="<video>", videos=indexed_frames(3), video_fps=[1, 2, 3])
    with pytest.raises(ValueError, match="differ in length"):
        processor(text=["a", "a longer prompt"], padding=False)
    with pytest.raises(ValueError, match="nothing to process"):
        processor()
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        processor(text="<video>", videos="/nonexistent/missing.mp4")


def test_tokenizer_without_video_token_is_rejected(image_processor):
    from pite.demo.tokenizer import train_llama_tokenizer

    plain = train_llama_tokenizer(["just some text"] * 5, vocab_size=300)
    with pytest.raises(ValueError, match="no special token '<frame>'"):
        PiTeProcessor(image_processor=image_processor, tokenizer=plain, video_token="<frame>")


def test_video_backend_is_saved_overridable_per_call_and_checked(
    image_processor, tokenizer, video_factory, frame_index_reader, tmp_path, monkeypatch
):
    from pite.processing import video_reading_pite

    processor = PiTeProcessor(image_processor=image_processor, tokenizer=tokenizer, num_frames=N, video_backend="pyav")
    processor.save_pretrained(tmp_path)
    reloaded = PiTeProcessor.from_pretrained(tmp_path)
    assert (
        reloaded.video_backend == "pyav"
        and PiTeProcessor.from_pretrained(tmp_path, video_backend="decord").video_backend == "decord"
    )
    used = []
    real = video_reading_pite.read_video
    monkeypatch.setattr(
        "pite.processing.video_processing_pite.read_video",
        lambda *args, backend, **kwargs: used.append(backend) or real(*args, backend=backend, **kwargs),
    )
    video = video_factory(30, fps=10)
    by_pyav = reloaded(text="<video> a", videos=video)
    by_decord = reloaded(text="<video> a", videos=video, video_backend="decord")
    assert used == ["pyav", "decord"]
    assert [m["frame_indices"] for m in (by_pyav["video_metadata"][0], by_decord["video_metadata"][0])] == [
        [frame_index_reader(f) for f in read_video(video, N, backend="pyav").frames]
    ] * 2
    torch.testing.assert_close(by_pyav["pixel_values_videos"], by_decord["pixel_values_videos"])
    with pytest.raises(
        ValueError, match=r"video_backend must be one of \('auto', 'decord', 'pyav', 'torchcodec'\), got 'opencv'"
    ):
        PiTeProcessor(image_processor=image_processor, tokenizer=tokenizer, video_backend="opencv")
