"""Key-point selection, following and resampling on masks with exactly known motion (numpy only)."""

from __future__ import annotations

import numpy as np
import pytest

from pite.annotation.keypoints import (
    KeyPointFollower,
    mask_pixel_centres,
    points_visible,
    register_mask,
    sampled_trajectory,
    select_key_points,
)
from pite.annotation.video_frames import event_frame_window, tracking_frames

HEIGHT, WIDTH = 64, 96


def disc(cx: float, cy: float, radius: float) -> np.ndarray:
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH] + 0.5
    return (cols - cx) ** 2 + (rows - cy) ** 2 <= radius**2


def square(cx: float, cy: float, half: float) -> np.ndarray:
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH] + 0.5
    return (np.abs(cols - cx) <= half) & (np.abs(rows - cy) <= half)


def test_key_points_are_ordered_kmeans_centres_inside_the_mask():
    mask = square(40, 30, 10)
    points = select_key_points(mask, 3, np.random.default_rng(0))
    assert points.shape == (3, 2)
    assert all(mask[int(y), int(x)] for x, y in points)
    pixels = mask_pixel_centres(mask)
    nearest = np.argmin(((pixels[:, None] - points[None]) ** 2).sum(axis=2), axis=1)
    for p in range(3):  # Lloyd fixed point: every centre is the mean of its cell
        np.testing.assert_allclose(pixels[nearest == p].mean(axis=0), points[p], atol=1e-9)
    assert np.lexsort((points[:, 0], points[:, 1])).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="fewer than the 3 key points"):
        select_key_points(square(40, 30, 0.4), 3, np.random.default_rng(0))


@pytest.mark.parametrize("shift", [(0, 0), (12, 0), (-7, 5), (20, -9)])
def test_translation_is_followed_exactly(shift):
    reference = disc(40, 30, 8)
    points = select_key_points(reference, 3, np.random.default_rng(1))
    follower = KeyPointFollower(reference, points)
    located, visible = follower.locate(disc(40 + shift[0], 30 + shift[1], 8))
    np.testing.assert_allclose(located, points + np.array(shift, dtype=float), atol=1e-9)
    assert visible.all()


def test_object_leaving_the_frame_is_followed_without_inward_bias():
    """A disc sliding out on the right: its visible part's centroid lags behind, the key points must not."""
    reference = disc(40, 30, 8)
    points = select_key_points(reference, 3, np.random.default_rng(2))
    follower = KeyPointFollower(reference, points)
    for cx in (60.0, 80.0, 86.0, 90.0, 94.0, 98.0, 101.0):
        mask = disc(cx, 30, 8)
        located, visible = follower.locate(mask)
        np.testing.assert_allclose(located, points + [cx - 40, 0], atol=0.6)
        naive = mask_pixel_centres(mask).mean(axis=0) - mask_pixel_centres(reference).mean(axis=0)
        if cx >= 94:
            assert abs(naive[0] - (cx - 40)) > 2, "the plain centroid difference would be biased here"
        for (x, _), shown in zip(located, visible):
            if x >= WIDTH:
                assert not shown, "a point outside the frame is not visible"
    assert follower.scale == 1.0, "the scale of a mask cut by the frame edge is not measured"
    gone, shown = follower.locate(np.zeros((HEIGHT, WIDTH), dtype=bool))
    assert np.isnan(gone).all() and not shown.any()


def test_scale_is_measured_when_whole_and_kept_while_cut_off():
    reference = disc(40, 30, 8)
    points = select_key_points(reference, 3, np.random.default_rng(3))
    follower = KeyPointFollower(reference, points)
    located, _ = follower.locate(disc(40, 30, 12))
    ratio = np.linalg.norm(located - [40, 30], axis=1) / np.linalg.norm(points - [40, 30], axis=1)
    np.testing.assert_allclose(ratio, 1.5, rtol=0.03)
    located, _ = follower.locate(disc(90, 30, 12))  # cut off on the right: scale held at its last value
    np.testing.assert_allclose(follower.scale, 1.5, rtol=0.03)
    np.testing.assert_allclose(located - [90, 30], (points - [40, 30]) * follower.scale, atol=0.8)
    fixed = KeyPointFollower(reference, points, estimate_scale=False)
    located, _ = fixed.locate(disc(40, 30, 12))
    np.testing.assert_allclose(located, points, atol=1e-9)


def test_register_mask_gives_up_when_nothing_is_left():
    reference = mask_pixel_centres(disc(40, 30, 8))
    assert register_mask(reference, np.zeros((HEIGHT, WIDTH), dtype=bool)) is None
    motion = register_mask(reference, disc(50, 30, 8), scale=1.0)
    np.testing.assert_allclose(motion.translation, [10, 0], atol=1e-9)


def test_visibility_needs_the_neighbourhood_inside_the_mask():
    mask = square(40, 30, 5)  # columns 35..44, rows 25..34
    points = np.array([[40.2, 30.7], [35.5, 30.5], [36.5, 30.5], [np.nan, np.nan], [0.5, 0.5]])
    assert points_visible(points, mask, margin=1).tolist() == [True, False, True, False, False]
    assert points_visible(points, mask, margin=0).tolist() == [True, True, True, False, False]


def test_resampling_reads_tracked_frames_and_marks_the_rest_absent():
    located = {
        4: (np.array([[48.0, 16.0], [10.0, 20.0]]), np.array([True, False])),
        6: (np.array([[96.0 - 1e-9, 0.0], [1.0, 2.0]]), np.array([True, True])),
    }
    trajectory = sampled_trajectory(np.array([0, 4, 4, 6, 9]), located, WIDTH, HEIGHT, num_points=2)
    assert trajectory.shape == (2, 5, 2)
    np.testing.assert_allclose(trajectory[0, 1], [0.5, 0.25])
    np.testing.assert_allclose(trajectory[0, 2], [0.5, 0.25])  # a repeated sampled frame repeats its value
    assert (trajectory[1, 1] == -1).all() and (trajectory[:, 0] == -1).all() and (trajectory[:, 4] == -1).all()
    np.testing.assert_allclose(trajectory[1, 3], [1 / WIDTH, 2 / HEIGHT])


def test_event_window_and_tracking_frames():
    timestamps = np.arange(50) / 10.0  # 50 frames at 10 fps, 5 s
    assert event_frame_window(timestamps, 1.0, 2.5, 5.0) == (10, 25)
    assert event_frame_window(timestamps, 1.04, 9.0, 5.0) == (10, 49), "an end past the video stops at its last frame"
    assert event_frame_window(timestamps, 5.5, 6.0, 5.0) is None
    sampled = np.round(np.linspace(0, 49, 7)).astype(int)  # 0 8 16 24 33 41 49 (any increasing frame list)
    frames = tracking_frames(10, 25, sampled, fps=10.0, track_fps=2.5)
    assert frames.tolist() == [10, 14, 16, 18, 22, 24]
    assert tracking_frames(10, 13, sampled, fps=10.0, track_fps=None).tolist() == [10, 11, 12, 13]
    with pytest.raises(ValueError, match="track_fps must be > 0"):
        tracking_frames(10, 25, sampled, fps=10.0, track_fps=0)
