"""Scenes: configuration checks, k-means++, event grammar, events agreeing with the motion, rendering."""

import numpy as np
import pytest

from pite.annotation.keypoints import kmeans_pp
from pite.demo.world.scene import (
    DIRECTIONS,
    WorldConfig,
    render_labels,
    render_video,
    sample_video_scene,
)

CONFIG = WorldConfig()
SCENES = [sample_video_scene(np.random.default_rng([3, 0, i]), CONFIG, f"s{i}") for i in range(120)]


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(width=63), "width"),
        (dict(fps=0), "fps"),
        (dict(colours=("red", "pink")), "colours"),
        (dict(shapes=("circle", "circle")), "shapes"),
        (dict(num_objects=(1, 4)), "num_objects"),
        (dict(duration_seconds=(6.0, 5.0)), "duration_seconds"),
        (dict(trajectory_window="clip"), "trajectory_window"),
        (dict(appear_probability=1.5), "appear_probability"),
        (dict(object_size=(0.1, 0.2)), "object_size"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(overrides, field):
    with pytest.raises(ValueError, match=f"WorldConfig.{field}"):
        WorldConfig(**overrides)


def test_kmeans_pp_finds_separated_clusters_sorted_and_seeded():
    rng = np.random.default_rng(0)
    truth = np.array([[10.0, 2.0], [3.0, 20.0], [25.0, 30.0]])
    points = np.concatenate([c + rng.normal(0, 0.5, size=(40, 2)) for c in truth])
    centres = kmeans_pp(points, 3, np.random.default_rng(1))
    expected = truth[np.lexsort((truth[:, 0], truth[:, 1]))]  # sorted by y, then x
    assert np.abs(centres - expected).max() < 0.3
    assert np.array_equal(centres, kmeans_pp(points, 3, np.random.default_rng(1)))
    with pytest.raises(ValueError, match="at least k=3 distinct points"):
        kmeans_pp(np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]]), 3, rng)


def test_objects_are_nameable_and_captions_unique():
    for scene in SCENES:
        colours = [o.colour for o in scene.objects]
        shapes = [o.shape for o in scene.objects]
        assert len(set(colours)) == len(colours) and len(set(shapes)) == len(shapes)
        captions = [e.caption for e in scene.events]
        assert len(set(captions)) == len(captions), captions
        for event in scene.events:
            phrase = scene.objects[event.object_index].phrase
            assert event.caption[slice(*event.span)] == phrase == event.phrase
            assert event.start == event.start_frame / CONFIG.fps and event.end == event.end_frame / CONFIG.fps
        assert all(any(s.kind == "move" for s in script) for script in scene.scripts)


def test_event_kinds_all_occur():
    kinds = {e.kind for scene in SCENES for e in scene.events}
    assert kinds == {"left", "right", "up", "down", "stops", "appears", "disappears"}


def _velocity(centres, frame):
    return centres[frame + 1] - centres[frame]


def test_events_agree_with_the_motion():
    fps = CONFIG.fps
    min_move, min_still = (round(CONFIG.move_seconds[0] * fps), round(CONFIG.still_seconds[0] * fps))
    for scene in SCENES:
        for event in scene.events:
            centres = scene.centres[event.object_index]
            a, b = event.start_frame, event.end_frame
            present = ~np.isnan(centres[:, 0])
            if event.kind in DIRECTIONS:
                assert b - a >= min_move - 1
                step = np.diff(centres[a : b + 1], axis=0)
                direction = np.array(DIRECTIONS[event.kind])
                # constant velocity along the named direction, nothing across it
                assert np.allclose(step, step[0], atol=1e-9)
                assert step[0] @ direction > 0 and abs(step[0] @ direction[::-1]) < 1e-12
                assert (centres[b] - centres[a]) @ direction >= CONFIG.min_move_distance - 1e-9
                # the motion changes at the event's boundaries
                if a > 0 and present[a - 1]:
                    assert not np.allclose(_velocity(centres, a - 1), step[0])
                if b + 1 < scene.num_source_frames and present[b + 1]:
                    assert not np.allclose(_velocity(centres, b), step[0])
            else:
                assert b - a >= min_still - 1
                last_shown = b - 1 if event.kind == "disappears" else b
                assert np.allclose(centres[a : last_shown + 1], centres[a])  # still
            if event.kind == "stops":
                assert np.linalg.norm(_velocity(centres, a - 1)) > 0  # it was moving
            if event.kind == "appears":
                assert not present[:a].any() and present[a] and a >= round(CONFIG.absent_seconds * fps)
            if event.kind == "disappears":
                assert present[b - 1] and not present[b:].any()
                assert np.linalg.norm(_velocity(centres, a - 1)) > 0
                assert scene.num_source_frames - b >= round(CONFIG.absent_seconds * fps)


def test_rendered_shapes_sit_at_their_centres_in_z_order():
    scene = SCENES[5]
    _, labels = render_video(scene)
    height, width = labels.shape[1:]
    solo = [render_labels([obj], scene.centres, height, width) == obj.index for obj in scene.objects]
    for obj in scene.objects:
        covered = np.zeros_like(solo[0])
        for later in scene.objects[obj.index + 1 :]:
            covered |= solo[later.index]
        assert np.array_equal(labels == obj.index, solo[obj.index] & ~covered)
        for frame in np.flatnonzero(~np.isnan(scene.centres[obj.index, :, 0])):
            rows, cols = np.nonzero(solo[obj.index][frame])
            uncut = rows.min() > 0 and cols.min() > 0 and rows.max() < height - 1 and cols.max() < width - 1
            if uncut:
                centroid = np.array([cols.mean() + 0.5, rows.mean() + 0.5])
                assert np.abs(centroid - scene.centres[obj.index, frame] * [width, height]).max() < 0.5
    assert (labels == -1).any()
