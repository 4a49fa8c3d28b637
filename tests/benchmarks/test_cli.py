"""`pite bench` (pite.cli.bench) and `python benchmarks/run.py`: options, errors, the table and the JSON file, on
tiny sizes. No timed assertions: only that rows run, report and are judged against their targets consistently."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
CHEAP_ROWS = "overhead,generation,peer,features,sdpa,static,batch,bf16"


def run_bench(argv):
    from pite.cli import bench

    parser = bench.build_parser("bench")
    return bench.run("bench", parser.parse_args(argv))


def test_bench_runs_rows_prints_the_table_and_writes_json(tiny_set_options, tmp_path, capsys):
    out = tmp_path / "results.json"
    status = run_bench(["--rows", CHEAP_ROWS, "--json", str(out), *tiny_set_options])
    printed = capsys.readouterr().out
    payload = json.loads(out.read_text())
    rows = [record["row"] for record in payload["results"]]
    assert rows == [
        "overhead",
        "generation",
        "peer (4 frames)",
        "peer (8 frames)",
        "features",
        "sdpa (train step)",
        "sdpa (generate)",
        "static cache",
        "batch 2",
        "bf16 (train step)",
        "bf16 (generate)",
    ]
    assert not [r for r in payload["results"] if "error" in r or "skipped" in r]
    assert payload["environment"]["sizes"]["hidden_size"] == 32 and payload["environment"]["torch"]
    for row in rows:
        assert f"| {row} |" in printed
    # the two targets are judged, and the exit status follows them (tiny models need not meet them)
    judged = {r["row"]: r["ratio"] <= r["target"] for r in payload["results"] if r["target"] is not None}
    assert set(judged) == {"overhead", "generation"}
    assert status == (0 if all(judged.values()) else 1)
    peer = payload["results"][3]["figures"]
    assert peer["video_llava_tokens"] == 11 + 8 * 5 and peer["pite_tokens"] == 1 + 4 + 10  # 28 px: 4 patches + CLS


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--rows", "overhead,nope"], "unknown rows ['nope']"),
        (["--rows", ","], "unknown rows []"),
        (["--set", "num_layers"], "--set expects NAME=VALUE, got 'num_layers'"),
        (["--set", "layers=2"], "unknown benchmark size 'layers'"),
    ],
)
def test_bad_options_exit_2_with_a_specific_message(argv, message, capsys):
    assert run_bench(argv) == 2
    assert message in capsys.readouterr().err


def test_list_names_every_row(capsys):
    assert run_bench(["--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == [
        "overhead",
        "generation",
        "peer",
        "video",
        "video_memory",
        "extraction",
        "features",
        "sdpa",
        "static",
        "compile",
        "batch",
        "checkpointing",
        "bf16",
        "gpu",
    ]


def test_a_failing_row_is_reported_and_fails_the_run(bench, monkeypatch, capsys):
    suite = bench("suite")

    def broken(sizes):
        raise RuntimeError("decoder exploded")

    monkeypatch.setitem(suite.ROWS, "static", (broken, "broken for the test"))
    assert run_bench(["--rows", "static,gpu"]) == 1
    captured = capsys.readouterr()
    assert "| static | - | FAILED | - | RuntimeError: decoder exploded | |" in captured.out
    assert "| gpu | - | skipped |" in captured.out  # no CUDA here: skipped, which is not a failure
    assert "failed or missed target: static" in captured.err


def test_missing_benchmarks_folder_is_named(tmp_path, monkeypatch):
    from pite.cli import bench

    with pytest.raises(FileNotFoundError, match=str(tmp_path / "__init__.py")):
        bench.load_benchmarks(tmp_path)
    monkeypatch.setenv("PITE_BENCHMARKS_DIR", str(tmp_path / "elsewhere"))
    assert bench.benchmarks_dir() == tmp_path / "elsewhere"


def test_checkpointing_peak_rss_child_reports_a_peak(bench, tiny_sizes):
    rss = bench("fast_paths")._peak_rss_in_child(tiny_sizes, checkpointing=True)
    assert rss["peak"] >= rss["rss_before"] > 0


def test_run_py_script_works_as_pite_bench():
    completed = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--list"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split()[0] == "overhead" and "gpu" in completed.stdout


def test_the_benchmark_runner_runs_a_row_in_process(tiny_set_options, capsys):
    """`benchmarks/run.py` is `pite.cli.bench.main` (a checkout command, not `pite bench`): one tiny row end to end."""
    from pite.cli import bench

    assert bench.main(["--rows", "static", *tiny_set_options]) == 0
    assert "| static cache |" in capsys.readouterr().out
