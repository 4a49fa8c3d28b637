"""Trajectory accuracy: masked L1 and PCK thresholds, hand-worked, square and non-square frames."""

import numpy as np
import pytest

from pite.eval.trajectory import trajectory_scores


def test_masked_l1_and_pck_hand_worked():
    targets = np.array(
        [[[0.5, 0.5], [0.2, 0.2], [-1.0, -1.0], [0.3, -1.0]]]  # two valid points, one absent, one half-absent
    )
    predictions = np.array([[[0.56, 0.5], [0.2, 0.33], [0.9, 0.9], [0.0, 0.0]]])
    scores = trajectory_scores(predictions, targets)
    # valid: errors (0.06, 0) and (0, 0.13): L1 = (0.06 + 0.13) / 2
    assert scores["L1"] == pytest.approx(0.095)
    assert scores["num_points"] == 2
    # square frame, diagonal sqrt(2): 0.06 / 1.414 = 0.042 (within 5%), 0.13 / 1.414 = 0.092 (within 10% only)
    assert scores["PCK@0.05"] == pytest.approx(50.0)
    assert scores["PCK@0.1"] == pytest.approx(100.0)


def test_aspect_ratio_changes_the_diagonal():
    targets, predictions = np.array([[0.5, 0.5]]), np.array([[0.56, 0.5]])
    square = trajectory_scores(predictions, targets)
    wide = trajectory_scores(predictions, targets, width=16, height=9)
    # 16:9: error 0.06 * 16 = 0.96 over a diagonal of sqrt(16^2 + 9^2) = 18.36 -> 0.0523: outside 5%, inside 10%
    assert square["PCK@0.05"] == 100.0
    assert wide["PCK@0.05"] == 0.0 and wide["PCK@0.1"] == 100.0
    assert trajectory_scores(predictions, targets, width=1920, height=1080) == wide  # only the aspect matters
    assert wide["L1"] == square["L1"]  # L1 stays in normalised units


def test_per_sample_frame_sizes():
    targets = np.array([[[0.5, 0.5]], [[0.5, 0.5]]])
    predictions = np.array([[[0.56, 0.5]], [[0.56, 0.5]]])
    scores = trajectory_scores(predictions, targets, width=[16, 1], height=[9, 1])
    assert scores["PCK@0.05"] == pytest.approx(50.0)  # the 16:9 sample misses, the square one hits


def test_trajectory_shape_b_p_n_2():
    rng = np.random.default_rng(0)
    targets = rng.uniform(0, 1, (2, 3, 5, 2))
    targets[0, 1, :2] = -1  # object not visible in the first two frames
    scores = trajectory_scores(targets.copy(), targets)
    assert scores == {"L1": 0.0, "PCK@0.05": 100.0, "PCK@0.1": 100.0, "num_points": 2 * 3 * 5 - 2}


@pytest.mark.parametrize(
    "predictions, targets, kwargs, message",
    [
        (np.zeros((2, 2)), np.zeros((3, 2)), {}, "same shape"),
        (np.zeros((2, 3)), np.zeros((2, 3)), {}, "size 2"),
        (np.zeros((2, 2)), -np.ones((2, 2)), {}, "no valid target"),
        (np.full((1, 2), np.nan), np.zeros((1, 2)), {}, "NaN"),
        (np.zeros((1, 2)), np.full((1, 2), np.nan), {}, "NaN"),
        (np.zeros((1, 2)), np.zeros((1, 2)), {"width": 16}, "both width and height"),
        (np.zeros((2, 2)), np.zeros((2, 2)), {"width": [1, 2, 3], "height": [1, 2, 3]}, "one value per sample"),
        (np.zeros((1, 2)), np.zeros((1, 2)), {"width": 0, "height": 9}, "positive"),
    ],
)
def test_bad_input(predictions, targets, kwargs, message):
    with pytest.raises(ValueError, match=message):
        trajectory_scores(predictions, targets, **kwargs)
