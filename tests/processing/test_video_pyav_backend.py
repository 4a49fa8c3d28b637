"""The PyAV backend of `read_video` beyond what test_video_reading checks for both backends: the pixels of a full
decode and decord's metadata on streams with B-frames, open GOPs, short GOPs, no frame count in the header
(Matroska) and a non-zero start time; the frames it decodes (seeks, not a full decode); and which backend "auto"
picks (PyAV, decord where av is missing)."""

from __future__ import annotations

import importlib.util
import sys
from fractions import Fraction

import numpy as np
import pytest

from pite.processing import VideoInputError, read_video, sample_frame_indices
from pite.processing import video_reading_pite as reading

av = pytest.importorskip("av")

FRAMES, SAMPLED = 45, 9


def encode(path, frames: np.ndarray, options: dict | None = None, first_pts: int = 0, fps: int = 10) -> str:
    """Write uint8 frames (T, H, W, 3) as H.264 with PyAV, frame i at time (first_pts + i) / fps; the container
    follows the file suffix."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = options or {}
        for pts, array in enumerate(frames, start=first_pts):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return str(path)


@pytest.fixture(scope="module")
def streams(tmp_path_factory, video_factory, indexed_frames):
    """name -> (path, seconds of the first frame) of index-encoded 10 fps videos of FRAMES frames."""
    folder, frames = tmp_path_factory.mktemp("pyav"), indexed_frames(FRAMES)
    return {
        "h264, B-frames, one key frame": (video_factory(FRAMES), 0.0),
        "mpeg4, key frame every 12": (video_factory(FRAMES, codec="mpeg4"), 0.0),
        # x264 open GOPs: key frames after the first are non-IDR I-frames (recovery points)
        "h264, open GOPs of 8": (
            encode(folder / "open_gop.mp4", frames, {"g": "8", "bf": "3", "x264-params": "open-gop=1"}),
            0.0,
        ),
        "matroska, no frame count": (encode(folder / "no_count.mkv", frames), 0.0),
        "starts at 0.7 s": (encode(folder / "late.mp4", frames, first_pts=7), 0.7),
    }


def full_decode(path: str) -> np.ndarray:
    with av.open(path) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


@pytest.mark.parametrize(
    "case",
    [
        "h264, B-frames, one key frame",
        "mpeg4, key frame every 12",
        "h264, open GOPs of 8",
        "matroska, no frame count",
        "starts at 0.7 s",
    ],
)
def test_pyav_reads_the_frames_of_a_full_decode_with_decords_metadata(streams, frame_index_reader, case):
    path, start_s = streams[case]
    sampled = read_video(path, SAMPLED, backend="pyav")
    expected = sample_frame_indices(FRAMES, SAMPLED).tolist()
    assert [frame_index_reader(frame) for frame in sampled.frames] == expected
    np.testing.assert_array_equal(sampled.frames, full_decode(path)[expected])
    meta = sampled.metadata
    assert meta["frame_indices"] == expected and meta["num_source_frames"] == FRAMES
    assert meta["fps"] == pytest.approx(10.0)
    assert meta["timestamps"] == pytest.approx([i / 10 for i in expected])  # from the first frame, not 0.7 s
    assert meta["duration"] == pytest.approx(FRAMES / 10)
    assert (meta["width"], meta["height"]) == (128, 32)
    with av.open(path) as container:
        stream = container.streams.video[0]
        assert float(stream.start_time * stream.time_base) == pytest.approx(start_s)
        if case.startswith("matroska"):
            assert stream.frames == 0  # T cannot come from the header here
    if importlib.util.find_spec("decord") is not None:  # decord's metadata, where it is installed
        by_decord = read_video(path, SAMPLED, backend="decord").metadata
        assert by_decord.keys() == meta.keys()
        for key, value in meta.items():
            assert by_decord[key] == pytest.approx(value, rel=1e-6), key  # decord's times are float32


def test_frames_decoded_follow_the_key_frames(video_factory, frame_index_reader, monkeypatch):
    """mpeg4 puts a key frame every 12 frames: each sampled frame costs its distance from its key frame, or from the
    previous sampled frame of the same GOP; read_video decodes the sampled indices that way."""
    path = video_factory(200, codec="mpeg4")
    with av.open(path) as container:
        structure = reading.probe_key_frames(container, path)
        assert structure.key_frames == tuple(range(0, 200, 12)) and structure.num_frames == 200
        frames, decoded = reading.decode_by_seeking(container, structure, [31, 199, 0, 30, 5, 31], path)
    # 0: 1 | 5: +5 on from 0 | 30: key 24, 7 | 31: +1 | 199: key 192, 8  -> 22 of 200
    assert decoded == 22
    assert [frame_index_reader(frame) for frame in frames] == [31, 199, 0, 30, 5, 31]

    calls = []
    real = reading.decode_frames

    def spy(container, structure, indices, name, strategy, frame_transform):
        calls.append((list(indices), strategy))
        return real(container, structure, indices, name, strategy, frame_transform)

    monkeypatch.setattr(reading, "decode_frames", spy)
    read_video(path, 6, backend="pyav", decode_strategy="seek")
    assert calls == [(sample_frame_indices(200, 6).tolist(), "seek")]


def test_timestamps_that_demuxing_did_not_list_are_an_error(video_factory):
    path = video_factory(30)
    with av.open(path) as container:
        structure = reading.probe_key_frames(container, "'clip.mp4'")
        shifted = reading.KeyFrameStructure(tuple(pts + 1 for pts in structure.frame_pts), structure.key_frames)
        with pytest.raises(VideoInputError, match="'clip.mp4': decoded a frame with timestamp 0 that demuxing"):
            reading.decode_by_seeking(container, shifted, [3], "'clip.mp4'")


def test_key_frame_structure_rejects_impossible_layouts():
    structure = reading.KeyFrameStructure
    with pytest.raises(ValueError, match="first frame must be a key frame"):
        structure(frame_pts=tuple(range(10)), key_frames=(3,))
    with pytest.raises(ValueError, match="ascending, unique display indices"):
        structure(frame_pts=tuple(range(10)), key_frames=(0, 5, 5))
    with pytest.raises(ValueError, match="frame_pts must be ascending and unique"):
        structure(frame_pts=(0, 2, 2, 3), key_frames=(0,))
    with pytest.raises(IndexError, match="outside a video of 4 frames"):
        structure(frame_pts=(0, 1, 2, 3), key_frames=(0, 2)).gop_start(4)


def test_auto_reads_with_pyav_and_with_decord_where_av_is_missing(video_factory, monkeypatch):
    """Where torchcodec cannot be imported (`test_video_reading_choice.py` covers where it can)."""
    pytest.importorskip("decord")
    for module in ("torchcodec", "torchcodec.decoders"):  # `import` then raises ImportError, imported before or not
        monkeypatch.setitem(sys.modules, module, None)
    path = video_factory(30)
    by_pyav, by_decord = (read_video(path, 5, backend=backend) for backend in ("pyav", "decord"))
    calls = []
    real = reading.decode_frames
    monkeypatch.setattr(reading, "decode_frames", lambda *args: calls.append(args) or real(*args))
    by_auto = read_video(path, 5)
    assert len(calls) == 1  # auto read with PyAV
    np.testing.assert_array_equal(by_auto.frames, by_pyav.frames)
    assert by_auto.metadata == by_pyav.metadata
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` now raises ImportError
    without_av = read_video(path, 5)
    assert len(calls) == 1  # decord read this one
    np.testing.assert_array_equal(without_av.frames, by_decord.frames)
    with pytest.raises(ImportError, match=r"backend='pyav' needs PyAV \(`pip install av`\)"):
        read_video(path, 5, backend="pyav")


def test_missing_libraries_and_bad_backend(video_factory, indexed_frames, monkeypatch):
    path = video_factory(30)
    with pytest.raises(
        ValueError, match="backend must be one of 'auto', 'decord', 'pyav', 'torchcodec', got 'ffmpeg'"
    ):
        read_video(path, 5, backend="ffmpeg")
    with pytest.raises(ValueError, match="backend must be one of"):
        read_video(indexed_frames(3), 2, backend="PyAV")
    monkeypatch.setitem(sys.modules, "decord", None)
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(ImportError, match=r"needs PyAV or decord \(`pip install av` or `pip install decord`\)"):
        read_video(path, 5)
    with pytest.raises(ImportError, match=r"backend='pyav' needs PyAV \(`pip install av`\)"):
        read_video(path, 5, backend="pyav")
    assert read_video(indexed_frames(3), 2).frames.shape == (2, 32, 128, 3)  # decoded frames need neither
