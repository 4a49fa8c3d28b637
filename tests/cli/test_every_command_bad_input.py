"""Every `pite` command, fed a missing file, a corrupted file and an existing output: exit status 2, one line
naming the path, no traceback, and no file that existed before changed (sha256 before and after).

Each row builds its inputs in a fresh folder and returns the command line, the path the message must name, and
the files to hash. Commands run in-process through `pite.cli.main.main`, and fail at input checking, before any
heavy work. Commands with no input file (demo) or no local output (push) have no row of that kind: the table in
the notes of this suite says so.
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .conftest import file_hashes, run_pite, truncated_copy

GOOD_CAPTIONS = {"v1": {"duration": 2.0, "timestamps": [[0.0, 1.0]], "sentences": ["the red square moves"]}}
CORRUPTED_JSON = '{"v1": {"duration": 2.0, "timestamps": [[0, 1]], '  # cut short
CPU = ["use_cpu=true", "bf16=false", "report_to=none"]


@dataclass
class Case:
    argv: list
    names: Path  # the path the one-line message must name
    watched: list = field(default_factory=list)  # files and folders that must not change
    # Record errors of training-format files say "NAME line N" (the key the results' skip lists use too).
    by_name: bool = False
    reason: str = ""  # a part of the message showing the row failed for the reason it is about


@dataclass
class Workspace:
    tmp: Path
    request: pytest.FixtureRequest
    monkeypatch: pytest.MonkeyPatch

    def fixture(self, name: str) -> Path:
        return self.request.getfixturevalue(name)

    def write(self, name: str, text: str) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def folder(self, name: str, *files: str) -> Path:
        """A folder holding `files` (small text files): an existing output with user data in it."""
        path = self.tmp / name
        path.mkdir(parents=True)
        for file in files:
            (path / file).write_text(f"user data: {file}\n", encoding="utf-8")
        return path

    def truncated_pite(self) -> Path:
        return truncated_copy(self.fixture("pite_dir"), self.tmp / "truncated-pite")

    def forbid(self, module: str, name: str) -> None:
        """Make `module.name` fail the test if called: the command must stop before that heavy step."""

        def called(*args, **kwargs):
            raise AssertionError(f"{module}.{name} ran: the command did not stop at input checking")

        self.monkeypatch.setattr(importlib.import_module(module), name, called)


def _eval(task: str, model: Path, data: Path, videos: Path, output: Path) -> list:
    extra = {"qa": ["--format", "msrvtt-qa", "--judge", "openai", "--judge-model", "gpt-test"]}.get(task, [])
    return ["eval", task, "--model", model, "--data", data, "--videos", videos, "--output", output, *extra]


GOOD_EVAL_DATA = {
    "grounding": ("data.json", json.dumps(GOOD_CAPTIONS)),
    "dense-captioning": ("data.json", json.dumps(GOOD_CAPTIONS)),
    "qa": ("data.json", json.dumps([{"answer": "red", "id": 0, "question": "what colour is it?", "video_id": 1}])),
    "trajectory": (
        "data.jsonl",
        json.dumps(
            {
                "video_id": "v1",
                "video": "v1.mp4",
                "duration": 2.0,
                "events": [
                    {
                        "caption": "the red square moves",
                        "start": 0.0,
                        "end": 1.0,
                        "objects": [
                            {"phrase": "the red square", "span": [0, 14], "trajectory": [[[0.5, 0.5]] * 4] * 3}
                        ],
                    }
                ],
            }
        )
        + "\n",
    ),
}


def _eval_rows(task: str) -> list:
    def good(w):
        return w.write(*GOOD_EVAL_DATA[task])

    def missing(w):
        data = w.tmp / "missing.json"
        return Case(
            _eval(task, w.fixture("pite_dir"), data, w.fixture("videos_dir"), w.tmp / "r.json"),
            data,
            [w.fixture("pite_dir"), w.tmp],
        )

    def corrupted(w):
        data = w.write("data.json", CORRUPTED_JSON)
        return Case(
            _eval(task, w.fixture("pite_dir"), data, w.fixture("videos_dir"), w.tmp / "r.json"),
            data,
            [w.fixture("pite_dir"), w.tmp],
            by_name=task == "trajectory",
        )

    def output_is_input(w):
        data = good(w)
        return Case(
            _eval(task, w.fixture("pite_dir"), data, w.fixture("videos_dir"), data),
            data,
            [w.fixture("pite_dir"), w.tmp],
            reason="is the input --data",
        )

    def output_is_folder(w):
        data, output = good(w), w.folder("results", "keep.txt")
        return Case(
            _eval(task, w.fixture("pite_dir"), data, w.fixture("videos_dir"), output),
            output,
            [w.fixture("pite_dir"), w.tmp],
            reason="is a folder",
        )

    def output_is_user_file(w):
        data, output = good(w), w.write("notes.json", '{"mine": true}\n')
        return Case(
            _eval(task, w.fixture("pite_dir"), data, w.fixture("videos_dir"), output),
            output,
            [w.fixture("pite_dir"), w.tmp],
            reason="is not the results file",
        )

    rows = [
        (f"eval-{task}", "missing", missing),
        (f"eval-{task}", "corrupted", corrupted),
        (f"eval-{task}", "existing-output:is-data", output_is_input),
        (f"eval-{task}", "existing-output:folder", output_is_folder),
        (f"eval-{task}", "existing-output:user-file", output_is_user_file),
    ]
    if task == "grounding":

        def truncated_model(w):
            model = w.truncated_pite()
            data = good(w)
            return Case(
                _eval(task, model, data, w.fixture("videos_dir"), w.tmp / "r.json"),
                model / "model.safetensors",
                [w.tmp],
                reason="truncated or corrupted safetensors",
            )

        def other_predictions(w):
            data = good(w)
            predictions = w.write(
                "r.predictions.json",
                json.dumps({"meta": {"task": "grounding", "model": "/elsewhere"}, "predictions": {}}),
            )
            return Case(
                _eval(task, w.fixture("pite_dir"), data, w.fixture("videos_dir"), w.tmp / "r.json"),
                predictions,
                [w.fixture("pite_dir"), w.tmp],
            )

        rows += [
            (f"eval-{task}", "corrupted:model-weights", truncated_model),
            (f"eval-{task}", "existing-output:predictions-of-other-settings", other_predictions),
        ]
    return rows


# ------------------------------------------------------------------------------------------------------ train
def _train(w, *overrides, config=None) -> list:
    return ["train", "--stage", "2", *(["--config", config] if config else []), *CPU, *overrides]


def train_missing(w):
    config = w.tmp / "missing.yaml"
    return Case(_train(w, f"output_dir={w.tmp / 'out'}", config=config), config, [w.tmp])


def train_corrupted_config(w):
    config = w.write("recipe.yaml", "lora_r: [8, 16\n")
    return Case(_train(w, f"output_dir={w.tmp / 'out'}", config=config), config, [w.tmp])


def train_corrupted_model(w):
    model = w.truncated_pite()
    return Case(
        _train(w, f"model_name_or_path={model}", f"output_dir={w.tmp / 'out'}"),
        model / "model.safetensors",
        [w.tmp],
        reason="truncated or corrupted safetensors",
    )


def _train_on(w, data) -> list:
    """Stage-2 training of the fixture PiTe on `data` (its media in the fixture videos folder)."""
    return _train(
        w,
        f"model_name_or_path={w.fixture('pite_dir')}",
        f"data_files=[{data}]",
        f"media_dir={w.fixture('videos_dir')}",
        f"output_dir={w.tmp / 'out'}",
    )


def train_missing_data(w):
    data = w.tmp / "missing.jsonl"
    return Case(
        _train_on(w, data),
        data,
        [w.tmp, w.fixture("pite_dir")],
    )


def train_corrupted_data(w):
    data = w.write("pite143k.jsonl", '{"video_id": "v1", "video": "v1.mp4", "duration": 2.0, "events": [\n')
    return Case(
        _train_on(w, data),
        data,
        [w.tmp, w.fixture("pite_dir")],
        by_name=True,
    )


def train_finished_run(w):
    out = w.folder("out", "pite_training.json", "model.safetensors", "config.json")
    w.forbid("pite.training.api", "load_model")
    return Case(
        _train(w, f"model_name_or_path={w.fixture('pite_dir')}", f"output_dir={out}"),
        out,
        [w.tmp],
        reason="already holds a training run",
    )


def train_output_is_model(w):
    model = w.tmp / "model"
    shutil.copytree(w.fixture("pite_dir"), model)
    w.forbid("pite.training.api", "load_model")
    return Case(
        _train(w, f"model_name_or_path={model}", f"output_dir={model}"), model, [w.tmp], reason="is model_name_or_path"
    )


# ------------------------------------------------------------------------------------------- extract-features
def _extract(model, media, out) -> list:
    return ["extract-features", "--model", model, "--media-dir", media, "--output-dir", out, "--no-progress"]


def extract_missing(w):
    model = w.tmp / "no-model"
    return Case(_extract(model, w.fixture("videos_dir"), w.tmp / "cache"), model, [w.tmp, w.fixture("videos_dir")])


def extract_missing_media(w):
    media = w.tmp / "no-media"
    return Case(
        _extract(w.fixture("pite_dir"), media, w.tmp / "cache"),
        media,
        [w.tmp, w.fixture("pite_dir")],
        reason="is not a folder",
    )


def extract_empty_media(w):
    media = w.folder("media", "notes.txt")
    return Case(
        _extract(w.fixture("pite_dir"), media, w.tmp / "cache"),
        media,
        [w.tmp, w.fixture("pite_dir")],
        reason="holds no video or image file",
    )


def extract_corrupted_model(w):
    model = w.truncated_pite()
    return Case(
        _extract(model, w.fixture("videos_dir"), w.tmp / "cache"),
        model / "model.safetensors",
        [w.tmp],
        reason="truncated or corrupted safetensors",
    )


def extract_corrupted_video(w):
    media = w.tmp / "media"
    media.mkdir()
    video = media / "v1.mp4"
    data = (w.fixture("videos_dir") / "v1.mp4").read_bytes()
    video.write_bytes(data[: len(data) // 2])  # cut short before the index (moov) at the end
    return Case(
        _extract(w.fixture("pite_dir"), media, w.tmp / "cache"), video, [w.tmp, w.fixture("pite_dir")], by_name=True
    )


def extract_corrupted_index(w):
    index = w.write("cache/index.json", '{"format_version": 1, "entries": {')
    return Case(
        _extract(w.fixture("pite_dir"), w.fixture("videos_dir"), index.parent), index, [w.tmp, w.fixture("pite_dir")]
    )


def extract_cache_of_other_model(w):
    from pite.data.feature_cache import FORMAT_VERSION

    index = w.write(
        "cache/index.json",
        json.dumps(
            {
                "format_version": FORMAT_VERSION,
                "fingerprint": "another-model",
                "num_frames": 4,
                "entries": {},
                "failed": {},
            }
        ),
    )
    return Case(
        _extract(w.fixture("pite_dir"), w.fixture("videos_dir"), index.parent),
        index.parent,
        [w.tmp, w.fixture("pite_dir")],
        reason="different vision tower",
    )


# ------------------------------------------------------------------------------------------------- annotate
def _annotate(w, captions, out) -> list:
    return ["annotate", "--videos", w.fixture("videos_dir"), "--captions", captions, "--out", out, "--no-progress"]


def annotate_missing(w):
    captions = w.tmp / "missing.json"
    return Case(_annotate(w, captions, w.tmp / "out.jsonl"), captions, [w.tmp])


def annotate_missing_videos(w):
    captions, videos = w.write("captions.json", json.dumps(GOOD_CAPTIONS)), w.tmp / "no-videos"
    w.forbid("pite.annotation.cli", "build_pipeline")
    return Case(
        ["annotate", "--videos", videos, "--captions", captions, "--out", w.tmp / "out.jsonl"],
        videos,
        [w.tmp],
        reason="is not a folder",
    )


def annotate_corrupted(w):
    captions = w.write("captions.json", CORRUPTED_JSON)
    return Case(_annotate(w, captions, w.tmp / "out.jsonl"), captions, [w.tmp])


def annotate_empty(w):
    captions = w.write("captions.jsonl", "")
    return Case(_annotate(w, captions, w.tmp / "out.jsonl"), captions, [w.tmp], reason="holds no videos")


def annotate_output_is_captions(w):
    captions = w.write(
        "captions.jsonl",
        json.dumps(
            {
                "video_id": "v1",
                "video": "v1.mp4",
                "events": [{"caption": "the red square moves", "start": 0.0, "end": 1.0}],
            }
        )
        + "\n",
    )
    w.forbid("pite.annotation.cli", "build_pipeline")
    return Case(_annotate(w, captions, captions), captions, [w.tmp], reason="is the input --captions")


def annotate_output_not_stage2(w):
    captions = w.write("captions.json", json.dumps(GOOD_CAPTIONS))
    out = w.write("notes.jsonl", '{"note": "my own file"}\n')
    w.forbid("pite.annotation.cli", "build_pipeline")
    return Case(_annotate(w, captions, out), out, [w.tmp], reason="has no string video_id")


# ---------------------------------------------------------------------------------------------------- hub
def build_missing(w):
    llm = w.tmp / "no-llm"
    return Case(["build", "--llm", llm, "--vision", w.fixture("clip_dir"), "--out", w.tmp / "out"], llm, [w.tmp])


def build_corrupted(w):
    llm = truncated_copy(w.fixture("llm_dir"), w.tmp / "llm")
    return Case(
        ["build", "--llm", llm, "--vision", w.fixture("clip_dir"), "--out", w.tmp / "out"],
        llm / "model.safetensors",
        [w.tmp],
        reason="truncated or corrupted safetensors",
    )


def build_existing(w):
    out = w.folder("out", "config.json")
    w.forbid("pite.hub.build", "load_tokenizer")
    return Case(
        ["build", "--llm", w.fixture("llm_dir"), "--vision", w.fixture("clip_dir"), "--out", out],
        out,
        [w.tmp, w.fixture("llm_dir")],
        reason="already exists",
    )


def build_out_is_input(w):
    llm = w.tmp / "llm"
    shutil.copytree(w.fixture("llm_dir"), llm)
    w.forbid("pite.hub.build", "load_tokenizer")
    return Case(
        ["build", "--llm", llm, "--vision", w.fixture("clip_dir"), "--out", llm, "--overwrite"],
        llm,
        [w.tmp],
        reason="is the input --llm",
    )


def _convert(w, base, out, *extra) -> list:
    stages = []
    for stage in (1, 2, 3):
        (w.tmp / f"stage{stage}").mkdir(exist_ok=True)
        stages += [f"--stage{stage}", w.tmp / f"stage{stage}"]
    return ["convert-original", "--base", base, "--clip", w.fixture("clip_dir"), *stages, "--out", out, *extra]


def convert_missing(w):
    base = w.tmp / "no-vicuna"
    return Case(_convert(w, base, w.tmp / "out"), base, [w.tmp])


def convert_corrupted(w):
    base = truncated_copy(w.fixture("llm_dir"), w.tmp / "vicuna")
    return Case(
        _convert(w, base, w.tmp / "out", "--dtype", "float32"),
        base / "model.safetensors",
        [w.tmp],
        reason="truncated or corrupted safetensors",
    )


def convert_existing(w):
    out = w.folder("out", "model.safetensors")
    w.forbid("pite.hub.convert_original", "load_tokenizer")
    return Case(_convert(w, w.fixture("llm_dir"), out), out, [w.tmp, w.fixture("llm_dir")], reason="already exists")


def export_missing(w):
    model = w.tmp / "no-model"
    return Case(["export", model, w.tmp / "out"], model, [w.tmp])


def export_corrupted(w):
    model = w.truncated_pite()
    return Case(
        ["export", model, w.tmp / "out"],
        model / "model.safetensors",
        [w.tmp],
        reason="truncated or corrupted safetensors",
    )


def export_existing(w):
    out = w.folder("out", "README.md")
    w.forbid("pite.hub.export", "load_checkpoint")
    return Case(["export", w.fixture("pite_dir"), out], out, [w.tmp, w.fixture("pite_dir")], reason="already exists")


def export_onto_itself(w):
    model = w.tmp / "model"
    shutil.copytree(w.fixture("pite_dir"), model)
    (model / "lora").mkdir()
    (model / "lora" / "adapter_config.json").write_text("{}\n")
    (model / "pite_training.json").write_text("{}\n")
    w.forbid("pite.hub.export", "load_checkpoint")
    return Case(["export", model, model, "--overwrite"], model, [w.tmp], reason="is the input MODEL_DIR")


def push_missing(w):
    folder = w.tmp / "no-export"
    return Case(["push", folder, "--repo-id", "someone/pite-tiny"], folder, [w.tmp])


def push_corrupted(w):
    config = w.write("export/config.json", '{"model_type": "pite", "auto_map": {')
    return Case(["push", config.parent, "--repo-id", "someone/pite-tiny"], config, [w.tmp])


# ------------------------------------------------------------------------------------------- demo and bench
def demo_existing(w):
    out = w.folder("demo", "metrics.json", "report.md")
    w.forbid("pite.demo.pipeline", "run_demo")
    return Case(["demo", "--quick", "--out", out], out, [w.tmp], reason="is not an empty folder")


def demo_out_is_file(w):
    out = w.write("demo", "my notes\n")
    w.forbid("pite.demo.pipeline", "run_demo")
    return Case(["demo", "--quick", "--out", out, "--overwrite"], out, [w.tmp], reason="is not an empty folder")


def bench_missing(w):
    folder = w.tmp / "no-benchmarks"
    w.monkeypatch.setenv("PITE_BENCHMARKS_DIR", str(folder))
    return Case(["bench", "--rows", "overhead"], folder, [w.tmp])


def bench_corrupted(w):
    init = w.write("benchmarks/__init__.py", "def broken(:\n")
    w.monkeypatch.setenv("PITE_BENCHMARKS_DIR", str(init.parent))
    w.monkeypatch.delitem(sys.modules, "pite_benchmarks", raising=False)
    return Case(["bench", "--rows", "overhead"], init, [w.tmp])


def bench_existing(w):
    results = w.write("results.json", '{"mine": true}\n')
    return Case(["bench", "--rows", "overhead", "--json", results], results, [w.tmp], reason="already exists")


ROWS: list[tuple[str, str, Callable[[Workspace], Case]]] = [
    ("demo", "existing-output", demo_existing),
    ("demo", "existing-output:file", demo_out_is_file),
    ("train", "missing", train_missing),
    ("train", "corrupted:config", train_corrupted_config),
    ("train", "corrupted:model-weights", train_corrupted_model),
    ("train", "missing:data-file", train_missing_data),
    ("train", "corrupted:data-file", train_corrupted_data),
    ("train", "existing-output:finished-run", train_finished_run),
    ("train", "existing-output:is-model", train_output_is_model),
    ("extract-features", "missing", extract_missing),
    ("extract-features", "missing:media-dir", extract_missing_media),
    ("extract-features", "corrupted:media-dir-without-media", extract_empty_media),
    ("extract-features", "corrupted:model-weights", extract_corrupted_model),
    ("extract-features", "corrupted:cache-index", extract_corrupted_index),
    ("extract-features", "corrupted:video", extract_corrupted_video),
    ("extract-features", "existing-output:other-model-cache", extract_cache_of_other_model),
    *_eval_rows("grounding"),
    *_eval_rows("dense-captioning"),
    *_eval_rows("qa"),
    *_eval_rows("trajectory"),
    ("annotate", "missing", annotate_missing),
    ("annotate", "missing:videos", annotate_missing_videos),
    ("annotate", "corrupted", annotate_corrupted),
    ("annotate", "corrupted:empty", annotate_empty),
    ("annotate", "existing-output:is-captions", annotate_output_is_captions),
    ("annotate", "existing-output:not-stage-2", annotate_output_not_stage2),
    ("build", "missing", build_missing),
    ("build", "corrupted", build_corrupted),
    ("build", "existing-output", build_existing),
    ("build", "existing-output:is-input", build_out_is_input),
    ("convert-original", "missing", convert_missing),
    ("convert-original", "corrupted", convert_corrupted),
    ("convert-original", "existing-output", convert_existing),
    ("export", "missing", export_missing),
    ("export", "corrupted", export_corrupted),
    ("export", "existing-output", export_existing),
    ("export", "existing-output:is-input", export_onto_itself),
    ("push", "missing", push_missing),
    ("push", "corrupted", push_corrupted),
    ("bench", "missing", bench_missing),
    ("bench", "corrupted", bench_corrupted),
    ("bench", "existing-output", bench_existing),
]


def test_every_command_has_a_row_of_each_kind_it_can_have():
    """The table covers every subcommand of `pite` and `python benchmarks/run.py` (a new command without rows fails
    here)."""
    from pite.cli.main import CHECKOUT_COMMANDS, SUBCOMMANDS

    commands = {row[0].split("-")[0] if row[0].startswith("eval-") else row[0] for row in ROWS}
    assert commands == set(SUBCOMMANDS) | set(CHECKOUT_COMMANDS)
    kinds = {}
    for command, kind, _ in ROWS:
        kinds.setdefault(command, set()).add(kind.split(":")[0])
    no_input_file, no_local_output = {"demo"}, {"push"}
    for command, found in kinds.items():
        expected = {"missing", "corrupted", "existing-output"}
        expected -= {"missing", "corrupted"} if command in no_input_file else set()
        expected -= {"existing-output"} if command in no_local_output else set()
        assert found == expected, command


@pytest.mark.parametrize("command, kind, build", ROWS, ids=[f"{row[0]}-{row[1]}" for row in ROWS])
def test_bad_input_exits_2_with_one_line_naming_the_path(command, kind, build, tmp_path, request, monkeypatch, capsys):
    case = build(Workspace(tmp_path, request, monkeypatch))
    before = file_hashes(*case.watched)
    status, stderr = run_pite(case.argv, capsys)
    shown = command.split("-")[0] if command.startswith("eval-") else command
    messages = [line for line in stderr.splitlines() if line.startswith(f"pite {shown}")]
    assert status == 2, stderr
    assert "Traceback" not in stderr, stderr
    assert len(messages) == 1, stderr
    assert (case.names.name if case.by_name else str(case.names)) in messages[0], messages[0]
    assert case.reason in messages[0], messages[0]
    assert file_hashes(*case.watched) == before
