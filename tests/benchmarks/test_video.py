"""Key-frame structure from demuxing, the count of frames a seek reader decodes (checked against the library's PyAV
seek reader), and the sequential and sequential-when-dense readers (checked against decord's frames)."""

from __future__ import annotations

import numpy as np
import pytest

FRAMES, GOP = 23, 5  # key frames at 0, 5, 10, 15, 20; flat frames of grey level 7 * index


@pytest.fixture(scope="module")
def grey_video(bench, tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "grey.mp4"
    bench("video").write_test_video(path, FRAMES, fps=10, width=64, height=32, gop=GOP, textured=False)
    return path


def grey_levels(frames: np.ndarray) -> list[int]:
    return [int(round(frame.mean() / 7)) for frame in frames]


def test_probe_finds_the_key_frames_without_decoding(bench, grey_video):
    structure = bench("video").probe_key_frames(grey_video)
    assert structure.num_frames == FRAMES
    assert structure.key_frames == (0, 5, 10, 15, 20)
    assert len(structure.frame_pts) == FRAMES and list(structure.frame_pts) == sorted(structure.frame_pts)
    assert bench("video").mean_gop(structure) == pytest.approx(FRAMES / 5)
    assert [structure.gop_start(i) for i in (0, 4, 5, 9, 22)] == [0, 0, 5, 5, 20]


def test_seek_count_follows_the_model_and_a_real_seek_reader(bench, grey_video):
    video = bench("video")
    structure = video.probe_key_frames(grey_video)
    indices = [0, 3, 7, 8, 12, 21, 22]
    # 0: 1 | 3: on from 0, +3 | 7: key 5, 3 | 8: +1 | 12: key 10, 3 | 21: key 20, 2 | 22: +1  -> 14
    assert video.frames_decoded_by_seeking(structure, indices) == 14
    assert video.frames_decoded_by_seeking(structure, [22, 0, 3, 3]) == 1 + 3 + 3  # sorted, repeats read once
    assert video.frames_decoded_sequentially(indices) == 23
    read = video.read_by_seeking(grey_video, indices, structure)
    assert read.frames_decoded == 14 and read.strategy == "seek (PyAV)"
    assert grey_levels(read.frames) == indices


def test_sequential_reader_returns_decords_frames(bench, grey_video):
    from pite.processing import read_video

    video = bench("video")
    sampled = read_video(str(grey_video), num_frames=7, backend="decord")
    indices = sampled.metadata["frame_indices"]
    sequential = video.read_sequential(grey_video, indices)
    assert sequential.frames_decoded == max(indices) + 1
    np.testing.assert_array_equal(sequential.frames, sampled.frames)
    assert grey_levels(sequential.frames) == indices


def test_sequential_when_dense_picks_by_key_frame_spacing(bench, grey_video):
    video = bench("video")
    structure = video.probe_key_frames(grey_video)
    # 7 of 23 frames: gaps of ~3.7 < 4.6 frames per key frame -> decode forward
    dense = video.read_sequential_when_dense(grey_video, 7)
    assert video.is_dense(structure, [0, 4, 7, 11, 15, 18, 22])
    assert dense.strategy == "sequential" and dense.frames_decoded == 23
    assert grey_levels(dense.frames) == [0, 3, 7, 11, 14, 18, 22]  # int32 linspace(0, 22, 7), as the release
    # 3 of 23 frames: gaps of 11 -> decord seeks: 1 (frame 0) + 2 (10, 11) + 3 (20..22)
    sparse = video.read_sequential_when_dense(grey_video, 3)
    assert not video.is_dense(structure, [0, 11, 22])
    assert sparse.strategy == "seek (decord)" and sparse.frames_decoded == 6
    assert grey_levels(sparse.frames) == [0, 11, 22]


def test_full_decode_decodes_every_frame(bench, grey_video):
    read = bench("video").decode_everything(grey_video, [2, 2, 9])
    assert read.frames_decoded == FRAMES and grey_levels(read.frames) == [2, 2, 9]


def test_peers_return_the_sampled_frames(bench, grey_video):
    from pite.processing.video_reading_pite import torchcodec_available

    video = bench("video")
    assert grey_levels(video.read_video_pyav_like(grey_video, [9, 2, 2])) == [9, 2, 2]
    if torchcodec_available():
        assert grey_levels(video.read_with_torchcodec(grey_video, [9, 2, 2])) == [9, 2, 2]


def test_peak_memory_counts_what_a_function_adds(bench):
    video = bench("video")
    _, allocated = video.peak_rss_above(lambda: np.ones((200, 2**20), np.uint8).sum())
    _, nothing = video.peak_rss_above(lambda: None)
    assert allocated >= 150 * 2**20 and nothing < 50 * 2**20


def test_the_video_row_reads_gop_and_hd_streams(bench, tiny_sizes):
    names = [name for name, *_ in bench("video")._streams(tiny_sizes)]
    assert names == ["g=30", "g=60", "g=250", "720p", "1080p"]
