"""The demo's read-out of the frozen frame encoder: each colour's centre, read linearly from a frame's feature."""

import json

import numpy as np
import pytest

from pite.demo.vision_pretraining import fit_colour_readout, per_colour_readout

NUM_COLOURS, NUM_SHAPES = 2, 3


def targets_of(present: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(M, C) presence and (M, C, 2) centres -> (M, C * (3 + S)) rows as `colour_position_targets` lays them out."""
    rows = np.zeros((len(present), NUM_COLOURS, 3 + NUM_SHAPES), dtype=np.float32)
    rows[..., 0] = present
    rows[..., 1:3] = np.where(present[..., None], centres, 0.0)
    rows[..., 3] = present
    return rows.reshape(len(present), -1)


MIXING = np.random.default_rng(123).normal(size=(NUM_COLOURS * 2, 16))  # one frame encoder for every split


def world(rng: np.random.Generator, frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames whose features hold each colour's centre linearly, colour 1 absent in every third frame."""
    centres = rng.uniform(0.1, 0.9, size=(frames, NUM_COLOURS, 2))
    present = np.ones((frames, NUM_COLOURS), dtype=bool)
    present[::3, 1] = False
    features = np.where(present.repeat(2, axis=1), centres.reshape(frames, -1), 0.0) @ MIXING
    return features, present, centres


def test_a_linear_encoding_is_read_exactly_and_beats_holding_the_object_still():
    rng = np.random.default_rng(0)
    train_x, train_present, train_centres = world(rng, 300)
    eval_x, eval_present, eval_centres = world(rng, 60)
    videos = np.repeat(["a", "b", "c"], 20)
    read = fit_colour_readout(train_x, targets_of(train_present, train_centres), NUM_SHAPES)
    scores = per_colour_readout(read, eval_x, targets_of(eval_present, eval_centres), videos, NUM_SHAPES)
    assert scores["readout_L1"] < 1e-3
    assert scores["num_points"] == int(eval_present.sum())
    # Held still: every visible centre at its own video's mean for that colour, computed by hand.
    errors = []
    for video in "abc":
        for colour in range(NUM_COLOURS):
            rows = (videos == video) & eval_present[:, colour]
            points = eval_centres[rows, colour]
            errors += list(np.abs(points - points.mean(axis=0)).sum(-1))
    assert scores["object_mean_L1"] == pytest.approx(np.mean(errors))
    centre = np.abs(eval_centres - 0.5).sum(-1)[eval_present].mean()
    assert scores["constant_centre_L1"] == pytest.approx(centre)
    assert scores["readout_L1"] < scores["object_mean_L1"] < scores["constant_centre_L1"]


def test_features_that_hold_no_position_read_no_better_than_the_centre():
    rng = np.random.default_rng(1)
    _, train_present, train_centres = world(rng, 400)
    _, eval_present, eval_centres = world(rng, 100)
    read = fit_colour_readout(rng.normal(size=(400, 16)), targets_of(train_present, train_centres), NUM_SHAPES)
    scores = per_colour_readout(
        read,
        rng.normal(size=(100, 16)),
        targets_of(eval_present, eval_centres),
        np.zeros(100),
        NUM_SHAPES,
    )
    assert scores["readout_L1"] > 0.9 * scores["constant_centre_L1"]


def test_mismatched_rows_are_refused():
    rng = np.random.default_rng(2)
    x, present, centres = world(rng, 10)
    with pytest.raises(ValueError, match="one row per frame"):
        fit_colour_readout(x, targets_of(present, centres)[:-1], NUM_SHAPES)
    read = fit_colour_readout(x, targets_of(present, centres), NUM_SHAPES)
    with pytest.raises(ValueError, match="one row per frame"):
        per_colour_readout(read, x, targets_of(present, centres)[:-1], np.zeros(10), NUM_SHAPES)
    with pytest.raises(ValueError, match="9 video ids for 10"):
        per_colour_readout(read, x, targets_of(present, centres), np.zeros(9), NUM_SHAPES)
    with pytest.raises(ValueError, match="no colour is visible"):
        none = targets_of(np.zeros_like(present), centres)
        per_colour_readout(read, x, none, np.zeros(10), NUM_SHAPES)


def test_read_outs_are_scored_on_trajectory_targets_by_hand(tmp_path):
    from pite.demo.evaluation import no_foresight_reference, no_foresight_scores

    colours = ("red", "blue")
    # Two frames, one key point per object. Red sits at (0.2, 0.2) then (0.4, 0.2); blue at (0.8, 0.8), absent in
    # frame 1 (-1). The read-out says red (0.25, 0.2), (0.4, 0.3) and blue (0.8, 0.7), (0.1, 0.1).
    red = [[[0.2, 0.2], [0.4, 0.2]]]
    blue = [[[0.8, 0.8], [-1.0, -1.0]]]
    record = {
        "video": "v.mp4",
        "duration": 1.0,
        "events": [
            {"caption": "the red circle moves", "objects": [{"phrase": "the red circle", "trajectory": red}]},
            {"caption": "the blue square stops", "objects": [{"phrase": "the blue square", "trajectory": blue}]},
        ],
    }
    (tmp_path / "t.jsonl").write_text(json.dumps(record) + "\n")
    positions = np.array([[[0.25, 0.2], [0.8, 0.7]], [[0.4, 0.3], [0.1, 0.1]]])
    present = np.array([[True, True], [True, False]])
    scores = no_foresight_scores(tmp_path / "t.jsonl", {"v.mp4": positions}, {"v.mp4": present}, colours)
    assert scores["num_points"] == 3
    assert scores["named_colour_L1"] == pytest.approx((0.05 + 0.1 + 0.1) / 3)
    # Scene: frame 0 is the mean of both read-outs (0.525, 0.45); frame 1 only red is present: (0.4, 0.3).
    scene = (abs(0.525 - 0.2) + abs(0.45 - 0.2)) + 0.1 + (abs(0.525 - 0.8) + abs(0.45 - 0.8))
    assert scores["scene_L1"] == pytest.approx(scene / 3)
    assert scores["constant_centre_L1"] == pytest.approx((0.6 + 0.4 + 0.6) / 3)

    split = {place: {"model": {"num_points": 10}} for place in ("first", "inner", "last")}
    reference = no_foresight_reference(scores, split)
    expected = (2 * scores["scene_L1"] + scores["named_colour_L1"]) / 3
    assert reference["L1"] == pytest.approx(expected)
    assert reference["fraction_of_centre"] == pytest.approx(expected / scores["constant_centre_L1"])
    only_last = no_foresight_reference(scores, {"last": {"model": {"num_points": 4}}})
    assert only_last["L1"] == pytest.approx(scores["named_colour_L1"])
    with pytest.raises(ValueError, match="no points"):
        no_foresight_reference(scores, {})
