"""How `read_video` decodes, never what: seeking or one sequential pass (chosen per file from the key-frame layout),
PyAV or torchcodec, resizing each frame as it is decoded. Every choice gives the frames of a full decode."""

from __future__ import annotations

import sys
from fractions import Fraction

import numpy as np
import pytest
import torch

from pite.processing import PiTeVideoProcessor, VideoInputError, read_video, sample_frame_indices
from pite.processing import video_reading_pite as reading

from .test_release_parity import _write
from .test_video_pyav_backend import encode

av = pytest.importorskip("av")
needs_torchcodec = pytest.mark.skipif(
    not reading.torchcodec_available(), reason="torchcodec (a build for this torch, FFmpeg's libraries) not loadable"
)
CASES = ["h264 with B-frames", "mpeg4", "vp9 in webm", "h264, variable frame rate", "h264, open GOPs"]


@pytest.fixture(scope="module")
def streams(tmp_path_factory, video_factory, indexed_frames):
    folder = tmp_path_factory.mktemp("choice")
    rng = np.random.default_rng(3)
    variable = np.cumsum(rng.integers(1, 5, size=37)).tolist()
    return {
        "h264 with B-frames": video_factory(41, fps=10),
        "mpeg4": video_factory(200, fps=10, codec="mpeg4"),  # a key frame every 12 frames
        "vp9 in webm": _write(folder / "vp9.webm", "libvpx-vp9", list(range(29)), Fraction(1, 10)),
        "h264, variable frame rate": _write(folder / "vfr.mp4", "libx264", [0] + variable, Fraction(1, 30)),
        "h264, open GOPs": encode(
            folder / "open_gop.mp4", indexed_frames(90), {"g": "8", "bf": "3", "x264-params": "open-gop=1"}
        ),
    }


def full_decode(path: str) -> np.ndarray:
    with av.open(path) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def structure(num_frames: int, gop: int) -> reading.KeyFrameStructure:
    return reading.KeyFrameStructure(tuple(range(num_frames)), tuple(range(0, num_frames, gop)))


def test_the_choice_follows_the_key_frame_layout():
    # 100 samples of 3600 frames: seeking skips the frames after each GOP's last sample (57% of them with a key
    # frame every 30 frames, 7% with one every 250), worth more than its 120 or 15 seeks.
    indices = sample_frame_indices(3600, 100)
    assert reading.choose_decode_strategy(structure(3600, 30), indices) == "seek"
    assert reading.choose_decode_strategy(structure(3600, 250), indices) == "seek"
    # Every frame wanted: seeking would only add seeks.
    assert reading.choose_decode_strategy(structure(1000, 250), range(1000)) == "sequential"
    # Samples closer together than the key frames, but only the first GOPs: the pass stops at the last sample.
    assert reading.choose_decode_strategy(structure(3600, 250), [0, 10, 20, 30]) == "sequential"
    # Two frames far apart: seek.
    assert reading.choose_decode_strategy(structure(3600, 30), [0, 3599]) == "seek"
    with pytest.raises(ValueError, match="at least one frame index"):
        reading.choose_decode_strategy(structure(10, 5), [])


@pytest.mark.parametrize("case", CASES)
def test_seeking_and_one_pass_give_the_frames_of_a_full_decode(streams, case):
    path = streams[case]
    full = full_decode(path)
    indices = sample_frame_indices(len(full), 9)
    results = {
        strategy: read_video(path, 9, backend="pyav", decode_strategy=strategy)
        for strategy in ("seek", "sequential", "auto")
    }
    for strategy, sampled in results.items():
        np.testing.assert_array_equal(sampled.frames, full[indices], err_msg=strategy)
        assert sampled.metadata == results["seek"].metadata


def test_one_pass_decodes_through_and_seeking_does_not(video_factory):
    path = video_factory(200, codec="mpeg4")
    with av.open(path) as container:
        keys = reading.probe_key_frames(container, path)
        _, by_seeking, _ = reading.decode_frames(container, keys, [5, 150], path, "seek")
        _, in_one_pass, size = reading.decode_frames(container, keys, [5, 150], path, "sequential")
    assert (by_seeking, in_one_pass, size) == (6 + 7, 151, (32, 128))  # 150's key frame is 144


@needs_torchcodec
@pytest.mark.parametrize("case", CASES[:-1])
def test_torchcodec_gives_the_frames_and_metadata_of_pyav(streams, case):
    path = streams[case]
    by_pyav = read_video(path, 9, backend="pyav")
    by_torchcodec = read_video(path, 9, backend="torchcodec")
    np.testing.assert_array_equal(by_torchcodec.frames, by_pyav.frames)
    np.testing.assert_array_equal(by_torchcodec.frames, full_decode(path)[by_pyav.metadata["frame_indices"]])
    assert by_torchcodec.metadata == by_pyav.metadata
    with open(path, "rb") as file:  # bytes too
        np.testing.assert_array_equal(read_video(file.read(), 9, backend="torchcodec").frames, by_pyav.frames)
    repeated = read_video(path, 250, backend="torchcodec")  # more samples than frames: indices repeat
    np.testing.assert_array_equal(repeated.frames, read_video(path, 250, backend="pyav").frames)


@needs_torchcodec
def test_where_torchcodec_stops_early_it_says_so(streams):
    path = streams["h264, open GOPs"]
    with pytest.raises(VideoInputError, match="torchcodec could not decode the sampled frames of video .*open_gop"):
        read_video(path, 9, backend="torchcodec")
    by_auto = read_video(path, 9)
    np.testing.assert_array_equal(by_auto.frames, full_decode(path)[by_auto.metadata["frame_indices"]])


def test_auto_reads_with_pyav_choosing_per_file(video_factory, monkeypatch):
    calls = []
    real = reading.decode_frames
    monkeypatch.setattr(reading, "decode_frames", lambda *args: calls.append(args) or real(*args))
    read_video(video_factory(200, codec="mpeg4"), 6)  # 6 samples, a key frame every 12 frames
    read_video(video_factory(30), 5)  # one GOP: every frame up to the last sample is decoded either way
    structures = [args[1] for args in calls]
    assert [reading.choose_decode_strategy(s, args[2]) for s, args in zip(structures, calls)] == ["seek", "sequential"]
    assert [args[4] for args in calls] == ["auto", "auto"]


@pytest.mark.parametrize("backend", ["pyav", "decord", "torchcodec"])
def test_a_transform_sees_each_frame_as_decoded(streams, backend):
    if backend == "torchcodec" and not reading.torchcodec_available():
        pytest.skip("torchcodec not loadable")
    pytest.importorskip("decord" if backend == "decord" else "av")
    path = streams["mpeg4"]
    seen = []

    def halve(frame: np.ndarray) -> np.ndarray:
        seen.append(frame.shape)
        return np.ascontiguousarray(frame[::2, ::2])

    indices = sample_frame_indices(200, 30).tolist() + [0]  # a repeated index is transformed once
    plain = read_video(path, 30, backend=backend)
    halved = read_video(path, 30, backend=backend, frame_transform=halve)
    assert seen == [(32, 128, 3)] * len(set(indices[:-1]))
    np.testing.assert_array_equal(halved.frames, plain.frames[:, ::2, ::2])
    assert (halved.metadata["width"], halved.metadata["height"]) == (128, 32)  # the video's, not the transform's
    decoded = read_video(plain.frames, 7, frame_transform=halve)  # decoded inputs too
    np.testing.assert_array_equal(decoded.frames, plain.frames[sample_frame_indices(30, 7)][:, ::2, ::2])


def test_resizing_while_decoding_gives_the_pixels_of_resizing_afterwards(streams, image_processor):
    processor = PiTeVideoProcessor.from_image_processor(image_processor, num_frames=8)
    path = streams["h264, variable frame rate"]
    pixels = processor(path, return_tensors="pt")["pixel_values_videos"][0]
    # Today's path without the reader's transform: full-resolution frames, then the CLIP image processor.
    frames = read_video(path, 8, backend="pyav").frames
    expected = image_processor(list(frames), return_tensors="pt")["pixel_values"]
    assert torch.equal(pixels, expected)
    seen = []
    real = reading.read_video
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            sys.modules[PiTeVideoProcessor.__module__],
            "read_video",
            lambda *args, **kwargs: seen.append(kwargs["frame_transform"]) or real(*args, **kwargs),
        )
        processor(path, return_tensors="pt")
        processor(path, return_tensors="pt", resize_backend="torch")
    assert seen[0] is not None and seen[1] is None  # the torch resize runs on the clip, after reading


def test_bad_input_is_named(tmp_path, video_factory):
    path = video_factory(30)
    with pytest.raises(ValueError, match="decode_strategy must be one of 'auto', 'seek', 'sequential', got 'fast'"):
        read_video(path, 5, decode_strategy="fast")
    with pytest.raises(ValueError, match="backend must be one of .*'torchcodec', got 'torchvision'"):
        read_video(path, 5, backend="torchvision")
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        read_video(str(tmp_path / "missing.mp4"), 5, backend="torchcodec")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    for backend in ("pyav", "torchcodec"):
        if backend == "torchcodec" and not reading.torchcodec_available():
            continue
        with pytest.raises(VideoInputError, match="corrupt.mp4"):
            read_video(str(corrupt), 5, backend=backend)


def test_torchcodec_missing_is_a_clear_import_error(video_factory, monkeypatch):
    for module in ("torchcodec", "torchcodec.decoders"):
        monkeypatch.setitem(sys.modules, module, None)
    assert not reading.torchcodec_available()
    with pytest.raises(
        ImportError,
        match=r"backend='torchcodec' needs torchcodec, a build matching the installed "
        r"torch, and FFmpeg's shared libraries",
    ):
        read_video(video_factory(30), 5, backend="torchcodec")
    assert read_video(video_factory(30), 5).frames.shape == (5, 32, 128, 3)  # auto falls back to PyAV
