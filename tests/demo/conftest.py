"""A tiny synthetic world shared by the demo tests (generated once per session, well under a second)."""

import pytest

TINY_WORLD = dict(num_train_videos=4, num_eval_videos=3, num_images=6, num_frames=20, seed=7)


@pytest.fixture(scope="session")
def tiny_world_kwargs():
    """The `generate_world` arguments of `tiny_world`."""
    return dict(TINY_WORLD)


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory, tiny_world_kwargs):
    from pite.demo.world import generate_world

    return generate_world(tmp_path_factory.mktemp("world"), **tiny_world_kwargs)
