"""Trajectory accuracy: masked L1 and PCK thresholds, hand-worked, square and non-square frames."""

import numpy as np
import pytest

from pite.eval.trajectory import trajectory_scores
from pite.eval.trajectory_runner import held_still_reference, phrase_positions, static_reference_predictions


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


def test_phrase_positions_split_runs_of_equal_targets():
    red, green = np.full((1, 2, 2), 0.2), np.full((1, 2, 2), 0.7)
    # "the red circle" (positions 4-6), "the green" (7-8), a lone "square" (12) with red's target again, "it" (13)
    # with red's target right after it: a new phrase starts where the target changes or a position is skipped.
    index = np.array([4, 5, 6, 7, 8, 12, 13])
    targets = np.stack([red, red, red, green, green, red, green])
    assert phrase_positions(index, targets).tolist() == ["first", "inner", "last", "first", "last", "first", "first"]
    assert phrase_positions(index[:0], targets[:0]).tolist() == []


def test_static_references_are_the_scene_and_object_means_of_visible_points():
    absent = [-1.0, -1.0]
    # two tokens (one point, three frames): an object at x = 0.2 (absent in frame 2), one at x = 0.8
    targets = np.array(
        [
            [[[0.2, 0.5], [0.4, 0.5], absent]],
            [[[0.8, 0.1], [0.8, 0.3], [0.8, 0.5]]],
        ]
    )
    references = static_reference_predictions(targets)
    np.testing.assert_allclose(references["object_mean"][0], [[[0.3, 0.5]] * 3])
    np.testing.assert_allclose(references["object_mean"][1], [[[0.8, 0.3]] * 3])
    np.testing.assert_allclose(references["scene_mean"], np.broadcast_to([0.6, 0.38], targets.shape))
    # the object's own mean beats the scene's on its points, as it should on any data where objects differ
    assert (
        trajectory_scores(references["object_mean"], targets)["L1"]
        < trajectory_scores(references["scene_mean"], targets)["L1"]
    )


def test_held_still_reference_is_the_l1_best_point_before_and_after_the_object_is_named():
    absent = [-1.0, -1.0]
    # "the red" (tokens 0-1: red moves right along y = 0.5, absent in frame 2), then "the green" (2-3: at x = 0.9)
    red = [[[0.1, 0.5], [0.3, 0.5], absent]]
    green = [[[0.9, 0.1], [0.9, 0.2], [0.9, 0.9]]]
    targets = np.array([red, red, green, green])
    places = np.array(["first", "last", "first", "last"])
    held = held_still_reference(targets, places)
    # first tokens: the median of the points of both first tokens (x of 0.1, 0.3, 0.9, 0.9, 0.9; y of
    # 0.5, 0.5, 0.1, 0.2, 0.9), every frame
    np.testing.assert_allclose(held[places == "first"], np.broadcast_to([0.9, 0.5], (2, 1, 3, 2)))
    np.testing.assert_allclose(held[1], [[[0.2, 0.5]] * 3])  # red's own median
    np.testing.assert_allclose(held[3], [[[0.9, 0.2]] * 3])  # green's: the median, not the mean 0.4
    # the median is the best fixed point: any other point held on the first tokens scores worse on their points
    first = places == "first"
    best = trajectory_scores(held[first], targets[first])["L1"]
    for other in ([0.5, 0.5], [0.9, 0.4], [0.7, 0.5], [0.9, 0.6]):
        assert trajectory_scores(np.broadcast_to(other, targets[first].shape), targets[first])["L1"] > best, other
    # and on the named tokens it is no worse than the object's mean held still (here strictly better for green)
    means = static_reference_predictions(targets)["object_mean"]
    assert trajectory_scores(held[3:], targets[3:])["L1"] < trajectory_scores(means[3:], targets[3:])["L1"]
    with pytest.raises(ValueError, match="3 phrase positions for 4 target tokens"):
        held_still_reference(targets, places[:3])
