"""Trajectory drawings: a PNG contact sheet and an animated GIF, decodable, with marks where the points are."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pite.processing import render_frames, save_contact_sheet, save_trajectory_gif
from pite.processing.visualization_pite import PALETTE

N, P = 6, 2


def trajectories():
    predicted = np.zeros((P, N, 2))
    predicted[0, :, 0] = np.linspace(0.2, 0.8, N)
    predicted[0, :, 1] = 0.5
    predicted[1] = [0.5, 0.25]
    predicted[1, 0] = -1  # absent in the first frame
    truth = predicted.copy()
    truth[0, :, 1] = 0.75
    return predicted, truth


def test_rendered_marks_sit_on_the_points():
    frames = np.full((N, 40, 80, 3), 255, np.uint8)  # white frames
    predicted, truth = trajectories()
    images = render_frames(frames, predicted=predicted, ground_truth=truth, width=160)
    assert len(images) == N and images[0].size == (160, 80)
    for i, image in enumerate(images):
        pixels = np.asarray(image)
        x, y = predicted[0, i] * [160, 80]
        assert tuple(pixels[round(y), round(x)]) == PALETTE[0]
        x, y = truth[0, i] * [160, 80]  # ground truth: same colour, hollow square around the point
        assert tuple(pixels[round(y) - 2, round(x)]) == PALETTE[0]
        if i == 0:  # no trail runs through it yet
            assert tuple(pixels[round(y), round(x)]) == (255, 255, 255)
    # the absent point of object 1 is not drawn in frame 0 but is in frame 1
    x, y = np.asarray([0.5, 0.25]) * [160, 80]
    assert tuple(np.asarray(images[0])[round(y), round(x)]) == (255, 255, 255)
    assert tuple(np.asarray(images[1])[round(y), round(x)]) == PALETTE[1]


def test_contact_sheet_and_gif_are_written_and_decodable(tmp_path, indexed_frames):
    frames = indexed_frames(N)
    predicted, truth = trajectories()
    sheet = save_contact_sheet(
        frames,
        tmp_path / "sheet.png",
        predicted=[predicted],
        ground_truth=[truth],
        columns=3,
        frame_width=64,
        timestamps=[i * 0.5 for i in range(N)],
    )
    gif = save_trajectory_gif(frames, tmp_path / "out" / "trajectory.gif", predicted=predicted, frame_width=64)
    with Image.open(sheet) as image:
        assert image.format == "PNG" and image.size == (3 * 64, 2 * 16)
    with Image.open(gif) as image:
        assert image.format == "GIF" and image.n_frames == N and image.size == (64, 16)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["sheet.png", "trajectory.gif"]


def test_pixel_coordinates_match_normalised_ones():
    frames = np.zeros((N, 40, 80, 3), np.uint8)
    predicted, _ = trajectories()
    pixels = predicted * [80, 40]
    pixels[1, 0] = np.nan
    normalised = [np.asarray(i) for i in render_frames(frames, predicted=predicted, width=80)]
    from_pixels = [np.asarray(i) for i in render_frames(frames, predicted=pixels, width=80, coordinates="pixels")]
    for a, b in zip(normalised, from_pixels):
        np.testing.assert_array_equal(a, b)


def test_bad_visualisation_inputs(tmp_path):
    frames = np.zeros((N, 40, 80, 3), np.uint8)
    with pytest.raises(ValueError, match=r"predicted\[0\]: expected a trajectory of shape \(P, 6, 2\).*\(2, 5, 2\)"):
        render_frames(frames, predicted=np.zeros((P, N - 1, 2)))
    with pytest.raises(ValueError, match=r"frames must be a uint8 array \(N, H, W, 3\)"):
        render_frames(frames.astype(np.float32))
    with pytest.raises(ValueError, match="coordinates must be"):
        render_frames(frames, predicted=np.zeros((P, N, 2)), coordinates="percent")
    with pytest.raises(ValueError, match="got 2 timestamps for 6 frames"):
        save_contact_sheet(frames, tmp_path / "x.png", timestamps=[0, 1])
    assert not (tmp_path / "x.png").exists()
