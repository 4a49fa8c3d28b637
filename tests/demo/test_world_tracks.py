"""Key points and trajectories against the rendered and the decoded pixels."""

import dataclasses
import json

import decord
import numpy as np
import pytest

from pite.demo.world import COLOURS, WorldConfig, make_video, pite_record
from pite.demo.world.io import write_mp4
from pite.demo.world.track import event_trajectory
from pite.processing.video_reading_pite import sample_frame_indices

CONFIG = WorldConfig()
VIDEOS = [make_video(CONFIG, 11, "train", i) for i in range(8)]


def _pixels(points, width, height):
    return np.floor(points * [width, height]).astype(int)


def test_visible_key_points_lie_on_their_object_and_invisible_ones_do_not():
    for video in VIDEOS:
        scene, labels = video.scene, video.labels
        height, width = labels.shape[1:]
        padded = np.pad(labels, ((0, 0), (1, 1), (1, 1)), constant_values=-1)
        for obj in scene.objects:
            present = ~np.isnan(scene.centres[obj.index, :, 0])
            assert not video.visible[obj.index][~present].any()
            for frame in np.flatnonzero(present):
                for p, point in enumerate(video.key_points[obj.index, frame]):
                    col, row = _pixels(point, width, height)
                    on_frame = 0 <= col < width and 0 <= row < height
                    block = padded[frame, row : row + 3, col : col + 3] if on_frame else None
                    clear = on_frame and (block == obj.index).all()
                    assert video.visible[obj.index, frame, p] == clear
    visible_share = np.mean([v.visible[~np.isnan(v.key_points[..., 0])].mean() for v in VIDEOS])
    assert visible_share > 0.8  # occlusion and edges hide some key points, not most


def test_key_points_move_rigidly_with_their_object():
    video = VIDEOS[0]
    scale = np.array([CONFIG.width, CONFIG.height])
    for obj in video.scene.objects:
        offsets = (video.key_points[obj.index] - video.scene.centres[obj.index][:, None, :]) * scale
        present = ~np.isnan(offsets[:, 0, 0])
        assert np.allclose(offsets[present], offsets[present][0])
        assert np.all(np.linalg.norm(offsets[present][0], axis=1) < 1.3 * obj.size)  # within the shape's reach


def test_key_points_fall_on_the_object_colour_in_the_decoded_mp4(tmp_path):
    for video in VIDEOS[:4]:
        path = write_mp4(tmp_path / f"{video.scene.video_id}.mp4", video.frames, CONFIG.fps)
        reader = decord.VideoReader(str(path))
        assert len(reader) == video.scene.num_source_frames
        decoded = reader.get_batch(list(range(len(reader)))).asnumpy().astype(int)
        assert np.abs(decoded - video.frames).mean() < 3  # near-lossless overall
        k, t, p = np.nonzero(video.visible)
        cols, rows = _pixels(video.key_points[k, t, p], CONFIG.width, CONFIG.height).T
        seen = decoded[t, rows, cols]  # (M, 3)
        palette = np.array([COLOURS[o.colour] for o in video.scene.objects])
        # Nearest among the objects' colours and the background there: always the key point's own object.
        candidates = np.concatenate(
            [np.broadcast_to(palette, (len(seen), *palette.shape)), video.scene.background[rows, cols][:, None]],
            axis=1,
        )
        nearest = np.linalg.norm(candidates - seen[:, None], axis=2).argmin(axis=1)
        assert np.array_equal(nearest, k)
        assert np.abs(seen - palette[k]).max() <= 48


def test_trajectories_are_minus_one_exactly_where_untracked_or_invisible():
    grounded = []
    for video in VIDEOS:
        scene = video.scene
        indices = sample_frame_indices(scene.num_source_frames, CONFIG.num_frames)
        for event, trajectory in zip(scene.events, video.trajectories()):
            assert trajectory.shape == (CONFIG.num_key_points, CONFIG.num_frames, 2)
            tracked = (indices >= event.start_frame) & (indices <= event.end_frame)
            shown = video.visible[event.object_index][indices].T & tracked[None]  # (P, N)
            assert np.all(trajectory[~shown] == -1)
            assert np.array_equal(
                trajectory[shown], video.key_points[event.object_index][indices].transpose(1, 0, 2)[shown]
            )
            assert np.all((trajectory[shown] >= 0) & (trajectory[shown] < 1))
            grounded.append(shown.any())
    # An object fully hidden behind another for a whole event keeps an all -1 trajectory (rare: about 1 in 1500).
    assert np.mean(grounded) > 0.95


def test_video_window_keeps_tracking_after_the_event():
    config = dataclasses.replace(CONFIG, trajectory_window="video")
    video = make_video(config, 11, "train", 0)
    indices = sample_frame_indices(video.scene.num_source_frames, config.num_frames)
    event = next(e for e in video.scene.events if e.end_frame < video.scene.last_frames[e.object_index] - 5)
    later = indices > event.end_frame
    windowed = event_trajectory(video.scene, video.key_points, video.visible, event)
    assert (windowed[:, later] != -1).any()
    assert np.array_equal(
        windowed[:, indices < event.start_frame], np.full_like(windowed[:, indices < event.start_frame], -1)
    )


@pytest.mark.parametrize("num_frames", [7, 100])
def test_pite_record_serialises_every_event(num_frames):
    video = VIDEOS[1]
    record = json.loads(json.dumps(pite_record(video, num_frames)))
    assert record["duration"] == video.scene.num_source_frames / CONFIG.fps
    for event, entry, trajectory in zip(video.scene.events, record["events"], video.trajectories(num_frames)):
        assert entry["caption"] == event.caption and (entry["start"], entry["end"]) == (event.start, event.end)
        (obj,) = entry["objects"]
        assert entry["caption"][slice(*obj["span"])] == obj["phrase"]
        assert np.abs(np.array(obj["trajectory"]) - trajectory).max() <= 1e-5
