"""`pite train`'s command line: options and overrides in any order, a fast --help, one-line errors (exit 2) naming
the field and value, and an output folder holding a finished run refused before any work."""

import hashlib
import json
import os
import subprocess
import sys
import time

import pytest

from pite.cli.main import main as pite_main
from pite.training.cli import build_parser

CPU = ["use_cpu=true", "bf16=false"]


def test_options_and_overrides_in_any_order():
    parser = build_parser("train")
    args = parser.parse_args(
        ["lora_r=8", "--resume", "bf16=false", "--config", "mine.yaml", "--stage", "2", "output_dir=out"]
    )
    assert args.stage == 2 and args.resume is True and args.config == "mine.yaml"
    assert args.overrides == ["lora_r=8", "bf16=false", "output_dir=out"]


def test_help_imports_neither_torch_nor_transformers_nor_trl():
    code = (
        "import sys, time; start = time.perf_counter(); from pite.training.cli import build_parser; "
        "text = build_parser('train').format_help(); elapsed = time.perf_counter() - start; "
        "print(elapsed, [m for m in ('torch', 'transformers', 'trl') if m in sys.modules], "
        "'localization_loss_weight' in text, 'overwrite_output_dir' in text)"
    )
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    wall = time.perf_counter() - start
    elapsed, rest = result.stdout.split(" ", 1)
    assert rest.strip() == "[] True True"
    print(f"\npite train --help: parser built in {float(elapsed):.3f} s, whole process {wall:.2f} s")


def _hashes(folder):
    return {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in sorted(os.listdir(folder))
        if (folder / name).is_file()
    }


@pytest.mark.parametrize(
    "override, field, value",
    [
        ("lora_r=abc", "lora_r", "abc"),
        ("save_strategy=sometimes", "save_strategy", "sometimes"),
        ("model_name_or_path=/no/such/pite/folder", "model_name_or_path", "/no/such/pite/folder"),
        ("learning_rate=1e-3x", "learning_rate", "1e-3x"),
    ],
)
def test_bad_values_are_one_line_exit_2_naming_field_and_value(tmp_path, capsys, override, field, value):
    argv = ["train", "--stage", "1", *CPU, f"output_dir={tmp_path / 'out'}", override]
    assert pite_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and field in err and value in err, err
    assert not (tmp_path / "out").exists()


def test_a_finished_run_is_refused_before_any_work(tmp_path, capsys):
    output = tmp_path / "finished"
    output.mkdir()
    (output / "pite_training.json").write_text(json.dumps({"stage": 1}))
    (output / "config.json").write_text("{}")
    before = _hashes(output)
    # the model path does not exist: the refusal must come first, before loading anything
    argv = ["train", "--stage", "1", *CPU, "model_name_or_path=/no/such/model", f"output_dir={output}"]
    assert pite_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "already holds a training run" in err and "overwrite_output_dir=true" in err and err.count("\n") == 0
    assert _hashes(output) == before
    # with the explicit option (or --resume) the folder is accepted and the next check (the model) speaks
    for extra in (["overwrite_output_dir=true"], ["--resume"]):
        assert pite_main(argv + extra) == 2
        assert "model_name_or_path='/no/such/model'" in capsys.readouterr().err
    assert _hashes(output) == before


def test_resume_from_an_incomplete_checkpoint_is_one_line(tmp_path, capsys):
    checkpoint = tmp_path / "out" / "checkpoint-4"
    checkpoint.mkdir(parents=True)
    argv = [
        "train",
        "--stage",
        "1",
        *CPU,
        "model_name_or_path=/no/such/model",
        f"output_dir={tmp_path / 'out'}",
        "--resume-from",
        str(checkpoint),
    ]
    assert pite_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "not a complete checkpoint" in err and str(checkpoint) in err and err.count("\n") == 0
