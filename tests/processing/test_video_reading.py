"""Video reading: which frames are sampled, their timestamps, metadata, input kinds, and every bad input; encoded
videos through both backends (decord and PyAV), which must agree on all of it."""

from __future__ import annotations

import io
import pathlib

import numpy as np
import pytest
from PIL import Image

from pite.processing import VideoInputError, read_image, read_video, sample_frame_indices


@pytest.fixture(params=["decord", "pyav"])
def backend(request):
    """The reader of encoded videos under test."""
    pytest.importorskip("decord" if request.param == "decord" else "av")
    return request.param


def test_sample_frame_indices_linspace_truncated_as_the_release():
    assert sample_frame_indices(10, 4).tolist() == [0, 3, 6, 9]
    assert sample_frame_indices(101, 5).tolist() == [0, 25, 50, 75, 100]
    # truncation, as the release's int32 linspace: linspace(0, 9, 7) = 0, 1.5, 3, 4.5, 6, 7.5, 9
    assert sample_frame_indices(10, 7).tolist() == [0, 1, 3, 4, 6, 7, 9]
    # linspace(0, 29, 8) = 0, 4.14, 8.29, 12.43, 16.57, 20.71, 24.86, 29: rounding would give 4, 8, 12, 17, 21, 25
    assert sample_frame_indices(30, 8).tolist() == [0, 4, 8, 12, 16, 20, 24, 29]
    many = sample_frame_indices(1000, 100)
    assert many[0] == 0 and many[-1] == 999 and len(many) == 100


def test_sample_frame_indices_short_video_repeats_frames():
    assert sample_frame_indices(3, 7).tolist() == [0, 0, 0, 1, 1, 1, 2]
    assert sample_frame_indices(1, 4).tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
def test_read_mp4_samples_the_linspace_frames_with_their_timestamps(video_factory, frame_index_reader, codec, backend):
    path = video_factory(50, fps=10, width=144, height=48, codec=codec)
    sampled = read_video(path, num_frames=8, backend=backend)
    expected = [int(i) for i in np.linspace(0, 49, 8)]  # 0, 7, 14, 21, 28, 35, 42, 49
    assert sampled.frames.shape == (8, 48, 144, 3) and sampled.frames.dtype == np.uint8
    assert [frame_index_reader(frame) for frame in sampled.frames] == expected
    meta = sampled.metadata
    assert meta["frame_indices"] == expected
    assert meta["timestamps"] == pytest.approx([i / 10 for i in expected])
    assert meta["fps"] == pytest.approx(10.0)
    assert meta["duration"] == pytest.approx(5.0)
    assert meta["num_source_frames"] == 50
    assert (meta["width"], meta["height"]) == (144, 48)


def test_short_video_repeats_frames_with_true_timestamps(video_factory, frame_index_reader, backend):
    sampled = read_video(video_factory(4, fps=5), num_frames=8, backend=backend)
    expected = [0, 0, 0, 1, 1, 2, 2, 3]  # int(linspace(0, 3, 8)) = 0, .43, .86, 1.29, 1.71, 2.14, 2.57, 3
    assert sampled.metadata["frame_indices"] == expected
    assert [frame_index_reader(frame) for frame in sampled.frames] == expected
    assert sampled.metadata["timestamps"] == pytest.approx([i / 5 for i in expected])
    assert sampled.metadata["duration"] == pytest.approx(0.8)


def test_reading_seeks_only_the_sampled_indices(video_factory, monkeypatch):
    """The reader asks decord for the N sampled frames in one get_batch call, never for the whole stream."""
    import decord

    requested = []

    class SpyReader(decord.VideoReader):
        def get_batch(self, indices):
            requested.append(list(indices))
            return super().get_batch(indices)

        def __getitem__(self, index):  # frame-by-frame access would decode sequentially
            raise AssertionError("read_video must not iterate frames one by one")

    monkeypatch.setattr(decord, "VideoReader", SpyReader)
    read_video(video_factory(200, fps=25), num_frames=6, backend="decord")
    assert requested == [[int(i) for i in np.linspace(0, 199, 6)]]


def test_path_bytes_file_object_and_pathlib_agree(video_factory, backend):
    path = video_factory(30, fps=10)
    data = pathlib.Path(path).read_bytes()
    reference = read_video(path, 5, backend=backend)
    with open(path, "rb") as handle:
        variants = [
            read_video(source, 5, backend=backend)
            for source in (pathlib.Path(path), data, bytearray(data), io.BytesIO(data), handle)
        ]
    for variant in variants:
        np.testing.assert_array_equal(variant.frames, reference.frames)
        assert variant.metadata == reference.metadata


def test_decoded_array_and_pil_frames(indexed_frames, frame_index_reader):
    frames = indexed_frames(9)
    untimed = read_video(frames, 4)
    assert [frame_index_reader(f) for f in untimed.frames] == [0, 2, 5, 8]  # int(0, 2.67, 5.33, 8)
    assert untimed.metadata["fps"] is None and untimed.metadata["timestamps"] is None
    assert untimed.metadata["duration"] is None and untimed.metadata["num_source_frames"] == 9

    timed = read_video([Image.fromarray(f) for f in frames], 4, fps=3.0)
    np.testing.assert_array_equal(timed.frames, untimed.frames)
    assert timed.metadata["timestamps"] == pytest.approx([0, 2 / 3, 5 / 3, 8 / 3])
    assert timed.metadata["duration"] == pytest.approx(3.0)
    assert (timed.metadata["width"], timed.metadata["height"]) == (128, 32)


def test_image_is_a_one_frame_video(indexed_frames):
    frame = indexed_frames(1)[0]
    for image in (frame, Image.fromarray(frame).convert("L")):
        sampled = read_image(image)
        assert sampled.frames.shape == (1, 32, 128, 3)
        assert sampled.metadata["frame_indices"] == [0] and sampled.metadata["num_source_frames"] == 1


# ---------------------------------------------------------------- bad input
def test_missing_file_names_the_path(tmp_path, backend):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        read_video(missing, 8, backend=backend)


def test_corrupt_truncated_and_empty_files(tmp_path, video_factory, backend):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    good = pathlib.Path(video_factory(30)).read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good[: len(good) // 3])
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    for path in (garbage, truncated, empty):
        with pytest.raises(VideoInputError, match=path.name):
            read_video(path, 8, backend=backend)
    with pytest.raises(VideoInputError, match="0 bytes"):
        read_video(b"", 8, backend=backend)
    with pytest.raises(VideoInputError, match="could not open"):
        read_video(garbage.read_bytes(), 8, backend=backend)
    with open(garbage, encoding="latin-1") as text_handle, pytest.raises(VideoInputError, match="binary mode"):
        read_video(text_handle, 8, backend=backend)


def test_zero_frame_and_audio_only_videos(tmp_path, backend):
    import av

    path = tmp_path / "zero.mp4"
    with av.open(str(path), "w") as container:  # a video stream without a single frame
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 128, 32, "yuv420p"
        container.start_encoding()
        for packet in stream.encode():
            container.mux(packet)
    audio_only = tmp_path / "audio_only.mp4"
    with av.open(str(audio_only), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    for bad in (path, audio_only):
        assert bad.stat().st_size > 0
        with pytest.raises(VideoInputError, match=bad.name):
            read_video(bad, 8, backend=backend)
    with pytest.raises(VideoInputError, match="no frames"):
        read_video(np.zeros((0, 4, 4, 3), np.uint8), 8)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((4, 8, 8), np.uint8), r"\(T, H, W, 3\).*\(4, 8, 8\)"),
        (np.zeros((4, 8, 8, 4), np.uint8), r"\(4, 8, 8, 4\)"),
        (np.zeros((4, 8, 8, 3), np.float32), "uint8.*float32"),
        ([np.zeros((8, 8, 3), np.uint8), np.zeros((9, 8, 3), np.uint8)], "differ in size"),
        ([np.zeros((8, 8), np.uint8)], r"frame 0 .*\(H, W, 3\)"),
        ([], "empty list"),
        (42, "unsupported video input <int>"),
    ],
)
def test_unsupported_video_inputs(bad, message):
    with pytest.raises(VideoInputError, match=message):
        read_video(bad, 4)


def test_unsupported_images_and_fps_for_encoded_video(video_factory, backend):
    with pytest.raises(VideoInputError, match=r"\(H, W, 3\).*\(5, 5\)"):
        read_image(np.zeros((5, 5), np.uint8))
    with pytest.raises(VideoInputError, match="unsupported image input"):
        read_image("picture.png")
    with pytest.raises(ValueError, match="carries its own timing"):
        read_video(video_factory(30), 4, fps=30, backend=backend)


def _write_faststart_mp4(path: pathlib.Path, num_frames: int, width: int = 128, height: int = 32) -> bytes:
    """An mp4 with its index (moov) before the frame data, as web-ready files are written."""
    import av

    from .conftest import indexed_frame

    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(num_frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(indexed_frame(index, width, height), "rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path.read_bytes()


@pytest.mark.parametrize("kept", [0.6, 0.8])
def test_truncated_file_with_an_intact_index_is_refused(tmp_path, backend, kept):
    """The index declares every frame but part of the frame data is gone: never read as a shorter video."""
    data = _write_faststart_mp4(tmp_path / "whole.mp4", 30)
    assert data.find(b"moov") < data.find(b"mdat"), "the index must come first for this case"
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * kept)])
    with pytest.raises(VideoInputError, match="cut.mp4") as caught:
        read_video(cut, 8, backend=backend)
    if backend == "pyav":
        assert "declares 30 frames but only" in str(caught.value)
    assert read_video(tmp_path / "whole.mp4", 8, backend=backend).metadata["num_source_frames"] == 30


def test_decord_failure_on_a_valid_narrow_video_says_to_read_with_pyav(tmp_path):
    """decord cannot copy frames of some valid widths (here 48 px); PyAV reads them."""
    pytest.importorskip("decord")
    import av

    path = tmp_path / "narrow.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        for value in range(0, 200, 20):
            frame = av.VideoFrame.from_ndarray(np.full((32, 48, 3), value, np.uint8), "rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    assert read_video(path, 4, backend="pyav").frames.shape == (4, 32, 48, 3)
    with pytest.raises(VideoInputError, match=r"narrow\.mp4.*backend='pyav'"):
        read_video(path, 4, backend="decord")
