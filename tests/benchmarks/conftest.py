"""Fixtures for the benchmark-suite tests: the suite loaded by path (as `pite bench` loads it) and tiny sizes."""

from __future__ import annotations

import importlib

import pytest

# Sizes that make every CPU row run in well under a second: `--set NAME=VALUE` pairs for the CLI tests.
TINY_SIZES = dict(
    hidden_size=32,
    intermediate_size=64,
    num_layers=2,
    num_heads=4,
    vocab_size=64,
    vision_hidden_size=32,
    vision_layers=1,
    image_size=28,
    num_frames=4,
    train_text_tokens=12,
    prompt_text_tokens=10,
    new_tokens=3,
    repeats=1,
    batch_sizes="1,2",
)


@pytest.fixture(scope="session")
def bench():
    """`bench("video")` -> the module `pite_benchmarks.video`, loaded from the checkout's benchmarks/ folder."""
    from pite.cli.bench import load_benchmarks

    load_benchmarks()
    return lambda name: importlib.import_module(f"pite_benchmarks.{name}")


@pytest.fixture
def tiny_sizes(bench):
    return bench("models").BenchSizes().replace({name: str(value) for name, value in TINY_SIZES.items()})


@pytest.fixture
def tiny_set_options():
    """The tiny sizes as CLI options."""
    options = []
    for name, value in TINY_SIZES.items():
        options += ["--set", f"{name}={value}"]
    return options
