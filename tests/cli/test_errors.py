"""The bad-input rule in one place: `pite.core.errors` types, and `pite.cli.main` printing them as one line, exit 2,
while real bugs keep their traceback."""

from __future__ import annotations

import argparse
import sys
import types

import pytest

from pite.cli import main as cli_main
from pite.core.errors import (
    InvalidInputError,
    MissingInputError,
    OutputExistsError,
    UserInputError,
    is_input_error,
    one_line,
)


@pytest.fixture
def fake_command(monkeypatch):
    """`pite fake` whose run() raises whatever the test puts in `raised[0]`."""
    raised: list[BaseException] = []
    module = types.ModuleType("pite_tests_fake_cli")
    module.build_parser = lambda command: argparse.ArgumentParser()

    def run(command, args):
        raise raised[0]

    module.run = run
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(cli_main.SUBCOMMANDS, "fake", (module.__name__, "raises"))
    return raised


@pytest.mark.parametrize(
    "kind, builtin",
    [(InvalidInputError, ValueError), (MissingInputError, FileNotFoundError), (OutputExistsError, FileExistsError)],
)
def test_each_kind_is_also_the_builtin_callers_catch_and_names_its_path(kind, builtin, tmp_path):
    error = kind("is not usable", path=tmp_path / "x.json", field="--data")
    assert isinstance(error, builtin) and isinstance(error, UserInputError)
    assert str(error) == f"{tmp_path / 'x.json'}: is not usable"
    assert error.path == tmp_path / "x.json" and error.field == "--data"
    # a message that already names the path is not prefixed twice
    assert str(kind(f"{tmp_path} exists", path=tmp_path)) == f"{tmp_path} exists"


@pytest.mark.parametrize(
    "error",
    [
        InvalidInputError("a\n  b\n  c", path="/data/x.json"),
        MissingInputError("gone", path="/data/y"),
        FileNotFoundError(2, "No such file or directory", "/data/z.yaml"),
        PermissionError(13, "Permission denied", "/data/w"),
    ],
)
def test_main_prints_bad_input_as_one_line_exit_2(fake_command, capsys, error):
    fake_command.append(error)
    assert cli_main.main(["fake"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pite fake: /data/"), err
    assert "Traceback" not in err


def test_multi_line_messages_are_joined():
    assert (
        one_line(InvalidInputError("not portable:\n  a is missing\n  b is missing"))
        == "not portable:; a is missing; b is missing"
    )


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("bug"),
        IndexError("bug"),
        ValueError("bug"),
        FileNotFoundError("an internal file, no path attribute"),
    ],
)
def test_a_bug_keeps_its_traceback(fake_command, error):
    fake_command.append(error)
    assert not is_input_error(error)
    with pytest.raises(type(error)):
        cli_main.main(["fake"])


def test_pite_traceback_shows_bad_input_tracebacks_too(fake_command, monkeypatch):
    fake_command.append(MissingInputError("gone", path="/data/y"))
    monkeypatch.setenv("PITE_TRACEBACK", "1")
    with pytest.raises(MissingInputError):
        cli_main.main(["fake"])


def test_pite_bench_says_what_to_run_instead(capsys):
    """The benchmarks are not installed: `pite bench` names the checkout's script, one line, exit 2."""
    assert cli_main.main(["bench", "--rows", "overhead"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pite bench: ") and "python benchmarks/run.py" in err[0]
