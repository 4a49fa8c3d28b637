"""PiTeVideoProcessor: the release's frame sampling, CLIP's pixels, VideoMetadata, inputs, saving and remote code."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
import torch
from transformers import CLIPImageProcessorPil
from transformers.video_utils import VideoMetadata

from pite.processing import PiTeVideoMetadata, PiTeVideoProcessor, read_video
from pite.processing.video_processing_pite import VideoProcessorMixin  # the installed transformers' base

from .conftest import run_without_pite


@pytest.fixture(scope="module")
def clip():
    # Odd sizes on purpose: the crop offset (H - h) // 2 and the shortest-edge rounding are exercised.
    return CLIPImageProcessorPil(size={"shortest_edge": 37}, crop_size={"height": 33, "width": 35})


@pytest.fixture(scope="module")
def video_processor(clip):
    return PiTeVideoProcessor.from_image_processor(clip, num_frames=6)


def test_is_a_transformers_video_processor_with_clip_settings(video_processor, clip):
    assert isinstance(video_processor, VideoProcessorMixin)
    assert video_processor.size.shortest_edge == 37 and video_processor.crop_size.height == 33
    assert tuple(video_processor.image_mean) == tuple(clip.image_mean) and video_processor.resample == clip.resample
    defaults = PiTeVideoProcessor()
    assert defaults.num_frames == 100 and defaults.size.shortest_edge == 224 and defaults.crop_size.width == 224


@pytest.mark.parametrize("shape", [(9, 61, 203, 3), (9, 203, 61, 3), (9, 20, 30, 3)])
def test_pixels_equal_the_clip_image_processor(video_processor, clip, shape):
    """Frames smaller than the crop are zero-padded, as CLIP's center_crop does."""
    frames = np.random.default_rng(sum(shape)).integers(0, 256, size=shape, dtype=np.uint8)
    out = video_processor(frames, return_tensors="pt")
    indices = np.linspace(0, shape[0] - 1, 6, dtype=np.int32)
    expected = clip(list(frames[indices]), return_tensors="pt")["pixel_values"]
    assert out["pixel_values_videos"].shape == (1, 6, 3, 33, 35)
    assert torch.equal(out["pixel_values_videos"][0], expected)
    assert torch.equal(
        video_processor(frames, device="cpu", return_tensors="pt")["pixel_values_videos"], out["pixel_values_videos"]
    )


def test_torch_resize_is_within_one_grey_level_of_pil(clip):
    processor = PiTeVideoProcessor.from_image_processor(clip, num_frames=4)
    frames = np.random.default_rng(0).integers(0, 256, size=(4, 71, 97, 3), dtype=np.uint8)  # noise: worst case
    exact = processor(frames, return_tensors="pt")["pixel_values_videos"]
    batched = processor(frames, resize_backend="torch", return_tensors="pt")["pixel_values_videos"]
    std = torch.tensor(clip.image_std).view(1, 1, 3, 1, 1)
    levels = ((batched - exact) * std * 255).abs()
    assert levels.max() <= 1 + 1e-3
    assert (levels > 0.5).float().mean() < 0.01
    with pytest.raises(ValueError, match=r"resize_backend must be one of \('pil', 'torch'\), got 'cv2'"):
        processor(frames, resize_backend="cv2")


def test_sample_frames_is_the_releases_truncating_linspace(video_processor):
    for total in (1, 5, 37, 1000):
        indices = video_processor.sample_frames(VideoMetadata(total_num_frames=total), num_frames=9)
        assert indices.tolist() == np.linspace(0, total - 1, 9, dtype=np.int32).tolist()
    with pytest.raises(ValueError, match="sampling at a target fps is not supported"):
        video_processor(np.zeros((10, 40, 40, 3), np.uint8), fps=2)


def test_encoded_video_metadata_is_video_metadata(video_processor, video_factory, frame_index_reader):
    path = video_factory(23, fps=10, width=160, height=48)
    out = video_processor(path, return_metadata=True, video_backend="pyav")
    (metadata,) = out["video_metadata"]
    assert isinstance(metadata, VideoMetadata) and isinstance(metadata, PiTeVideoMetadata)
    expected = np.linspace(0, 22, 6, dtype=np.int32).tolist()
    assert metadata.total_num_frames == 23 and metadata.frames_indices == expected
    assert metadata["frame_indices"] == expected and metadata["num_source_frames"] == 23
    assert metadata.fps == pytest.approx(10) and metadata.duration == pytest.approx(2.3)
    assert metadata.timestamps == pytest.approx([i / 10 for i in expected])
    assert (metadata.width, metadata.height, metadata.video_backend) == (160, 48, "pyav")
    assert [frame_index_reader(f) for f in read_video(path, 6).frames] == expected
    assert json.loads(json.dumps(dict(metadata)))["frame_indices"] == expected
    assert "video_metadata" not in video_processor(path)  # return_metadata defaults to False, as in transformers
    fetched, fetched_metadata = video_processor.fetch_videos([path])  # transformers' hook, PiTe's reader
    assert np.array_equal(fetched[0], read_video(path, 6).frames) and fetched_metadata[0].frames_indices == expected


def test_channel_first_arrays_tensors_nested_lists_and_all_frames(video_processor, indexed_frames):
    frames = indexed_frames(8, width=128, height=32)
    reference = video_processor(frames, return_tensors="pt")["pixel_values_videos"]
    channel_first = np.ascontiguousarray(frames.transpose(0, 3, 1, 2))
    nested = [[frames], [torch.from_numpy(channel_first)]]
    for variant in (channel_first, torch.from_numpy(frames), [list(frames)], nested):
        out = video_processor(variant, return_tensors="pt")["pixel_values_videos"]
        assert torch.equal(out[0], reference[0]), type(variant)
    every = video_processor(frames, do_sample_frames=False, video_fps=4, return_metadata=True, return_tensors="pt")
    assert every["pixel_values_videos"].shape[1] == 8
    assert every["video_metadata"][0].timestamps == pytest.approx([i / 4 for i in range(8)])


def test_bad_calls(video_processor, video_factory):
    with pytest.raises(ValueError, match="do_sample_frames=False keeps every frame of decoded frames"):
        video_processor(video_factory(10), do_sample_frames=False)
    with pytest.raises(TypeError, match=r"unexpected arguments for PiTeVideoProcessor: \['colour'\]"):
        video_processor(np.zeros((3, 40, 40, 3), np.uint8), colour=1)
    with pytest.raises(ValueError, match="num_frames must be an integer >= 1, got 0"):
        PiTeVideoProcessor(num_frames=0)
    with pytest.raises(ValueError, match="video_backend must be one of"):
        PiTeVideoProcessor(video_backend="opencv")


def test_save_and_load(video_processor, tmp_path):
    video_processor.save_pretrained(tmp_path)
    loaded = PiTeVideoProcessor.from_pretrained(tmp_path)
    assert loaded.to_dict() == video_processor.to_dict()
    assert json.loads((tmp_path / "video_preprocessor_config.json").read_text())["auto_map"] == {
        "AutoVideoProcessor": "video_processing_pite.PiTeVideoProcessor"
    }


CHILD = textwrap.dedent(
    """
    import json, sys

    import numpy as np
    import torch
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    folder, out = sys.argv[1:3]
    try:
        import torchvision  # noqa: F401
        from transformers import AutoVideoProcessor

        processor = AutoVideoProcessor.from_pretrained(folder, trust_remote_code=True)
    except ImportError:
        # transformers makes AutoVideoProcessor require torchvision; load the class its auto_map names instead.
        reference = json.load(open(folder + "/video_preprocessor_config.json"))["auto_map"]["AutoVideoProcessor"]
        processor = get_class_from_dynamic_module(reference, folder).from_pretrained(folder)
    assert type(processor).__name__ == "PiTeVideoProcessor" and not type(processor).__module__.startswith("pite")
    frames = np.random.default_rng(0).integers(0, 256, size=(11, 50, 70, 3), dtype=np.uint8)
    torch.save(processor(frames, return_tensors="pt")["pixel_values_videos"], out)
    """
)


def test_loads_as_remote_code_without_pite(video_processor, tmp_path):
    folder = tmp_path / "saved"
    video_processor.save_pretrained(folder)
    assert {"video_processing_pite.py", "video_reading_pite.py"} <= {p.name for p in folder.iterdir()}
    run_without_pite(CHILD, [str(folder), str(tmp_path / "pixels.pt")], tmp_path)
    frames = np.random.default_rng(0).integers(0, 256, size=(11, 50, 70, 3), dtype=np.uint8)
    expected = video_processor(frames, return_tensors="pt")["pixel_values_videos"]
    assert torch.equal(torch.load(tmp_path / "pixels.pt"), expected)


def test_auto_video_processor_without_torchvision_is_transformers_limit(tmp_path, video_processor):
    """Where torchvision is installed AutoVideoProcessor loads the remote class; without it transformers refuses
    any video processor through AutoVideoProcessor, PiTe's included (the child test above loads it directly)."""
    from transformers import AutoVideoProcessor
    from transformers.utils import is_torchvision_available

    video_processor.save_pretrained(tmp_path)
    if is_torchvision_available():
        loaded = AutoVideoProcessor.from_pretrained(tmp_path, trust_remote_code=True)
        assert type(loaded).__name__ == "PiTeVideoProcessor"
    else:
        with pytest.raises(ImportError, match="Torchvision"):
            AutoVideoProcessor.from_pretrained(tmp_path, trust_remote_code=True)
