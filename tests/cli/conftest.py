"""Fixtures for the bad-input tests of every `pite` command: the tiny checkpoints of tests/hub and tests/training
(reused by loading those conftest files, not copied), and helpers to run a command in-process and to hash files."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hub_fixtures = _load(TESTS / "hub" / "conftest.py", "pite_tests_cli_hub_fixtures")
training_fixtures = _load(TESTS / "training" / "conftest.py", "pite_tests_cli_training_fixtures")

# Re-registered here so that tests/cli can use them: the tiny Vicuna-like LM and CLIP folders `pite build` reads.
llm_dir = hub_fixtures.llm_dir
clip_dir = hub_fixtures.clip_dir


@pytest.fixture(scope="session")
def pite_dir(tmp_path_factory) -> Path:
    """A saved tiny PiTe with its processor (what `pite train/eval/export/extract-features` read)."""
    import torch

    from pite.demo.tokenizer import train_llama_tokenizer
    from pite.modeling_pite import PiTeForConditionalGeneration

    tokenizer = train_llama_tokenizer(training_fixtures.corpus(), vocab_size=360)
    processor = training_fixtures.tiny_processor(tokenizer)
    config = training_fixtures.tiny_config(tokenizer, text_layers=1)
    folder = tmp_path_factory.mktemp("pite-tiny")
    torch.manual_seed(0)
    PiTeForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def videos_dir(tmp_path_factory) -> Path:
    """One short mp4, v1.mp4."""
    folder = tmp_path_factory.mktemp("videos")
    training_fixtures.write_video(str(folder / "v1.mp4"), (220, 30, 30), 1)
    return folder


def truncated_copy(folder: Path, destination: Path, weights: str = "model.safetensors") -> Path:
    """A copy of `folder` whose `weights` file lost its second half (a download or copy cut short)."""
    shutil.copytree(folder, destination)
    path = destination / weights
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size // 2)
    return destination


def file_hashes(*roots: Path) -> dict[str, str]:
    """sha256 of every file under each root (a file or a folder), by path."""
    hashes = {}
    for root in roots:
        for path in [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()):
            hashes[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def run_pite(argv: list[str], capsys) -> tuple[int, str]:
    """(exit status, stderr) of `pite ARGV` run in this process; `bench ...` is `python benchmarks/run.py ...` (the
    benchmarks are a source checkout's, not a `pite` command)."""
    from pite.cli import bench
    from pite.cli.main import main

    capsys.readouterr()
    try:
        if argv[0] == "bench":
            status = bench.main([str(arg) for arg in argv[1:]])
        else:
            status = main([str(arg) for arg in argv])
    except SystemExit as exit_:
        status = exit_.code
    return status, capsys.readouterr().err
