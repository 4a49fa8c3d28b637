"""`pite eval score TASK --predictions FILE [--references FILE] [--format ...] [--protocol ...]`.

Scores a predictions file (`pite.eval.scoring` lists the formats) without loading a model or a video: prints the
table (with its protocol line) and, with `--output`, writes the results JSON (refusing to replace an existing one
without `--overwrite`). QA: exact-match accuracy always (ActivityNet-QA's official metric); with `--judge` also the
Video-ChatGPT judge protocol, its replies cached in `--judge-cache` (default: the output's, else the predictions
file's name with `.judgments.sqlite`), so a rerun asks nothing twice and an interrupted run resumes.
Exit status: 0 done, 1 the judge failed for good (its replies so far are cached), 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pite.eval import scoring, tables
from pite.eval.judge_options import JudgeStopped, judge_backend, judgment_rows, run_judge, sibling


def _table_row(args: argparse.Namespace) -> str:
    return args.model_name or Path(args.predictions).stem


def _score(args: argparse.Namespace) -> dict[str, Any]:
    predictions = Path(args.predictions)
    if not predictions.is_file():
        raise FileNotFoundError(f"predictions file {predictions} does not exist")
    if args.references is not None and not Path(args.references).is_file():
        raise FileNotFoundError(f"references file {args.references} does not exist")
    fmt = scoring.detect_format(predictions) if args.format == "auto" else args.format
    task = args.score_task
    if fmt not in scoring.TASK_FORMATS[task]:
        raise ValueError(
            f"{predictions}: format {fmt!r} holds no {task} predictions "
            f"(for {task}: {', '.join(scoring.TASK_FORMATS[task])})"
        )
    if args.charades_csv and task != "grounding":
        raise ValueError("--charades-csv belongs to grounding")
    if args.judge is not None and task != "qa":
        raise ValueError("--judge belongs to qa")
    if args.judge is not None and not args.judge_model:
        raise ValueError("--judge needs --judge-model (the endpoint's model name, or the local judge's folder)")
    if args.judge == "local" and args.judge_temperature != 0.0:
        raise ValueError("a local judge decodes greedily: --judge-temperature must be 0")
    result: dict[str, Any] = {
        "task": task,
        "model": _table_row(args),
        "format": fmt,
        "protocol": args.protocol,
        "predictions_file": str(predictions.resolve()),
        "references_file": None if args.references is None else str(Path(args.references).resolve()),
        "num_frames": args.num_frames,
    }
    row = result["model"]
    if task == "grounding":
        scores = scoring.score_grounding_file(
            predictions, args.references, fmt, args.protocol, args.num_frames, args.charades_csv
        )
        table = tables.activitynet_table({row: {"grounding": scores}})
    elif task == "dense-captioning":
        scores = scoring.score_dense_captioning_file(predictions, args.references, fmt, args.protocol, args.num_frames)
        for metric, reason in (scores.get("unavailable") or {}).items():
            print(f"pite eval score: {metric} not computed: {reason}", file=sys.stderr)
        table = tables.activitynet_table({row: {"dense_captioning": scores}})
    else:
        scores, table = _score_qa(args, predictions, result)
    unreadable = scores.get("unreadable_lines") if isinstance(scores, dict) else None
    if unreadable:
        print(
            f"pite eval score: {len(unreadable)} line(s) of {predictions} are not JSON objects and were skipped "
            f"(as VTimeLLM's metric.py skips them): lines {unreadable[:10]}",
            file=sys.stderr,
        )
    result.update(scores=scores, table=table)
    return result


def _score_qa(args: argparse.Namespace, predictions: Path, result: dict[str, Any]) -> tuple[dict, str]:
    from pite.eval.judge import judge_qa

    samples = scoring.read_video_chatgpt_qa(predictions)
    scores: dict[str, Any] = {
        "exact_match": scoring.exact_match_scores(samples, args.references, args.protocol),
        "num_predictions": len(samples),
    }
    if args.judge is not None:
        base = Path(args.output) if args.output else predictions
        cache_path = Path(args.judge_cache) if args.judge_cache else sibling(base, ".judgments.sqlite")
        judge = judge_backend(args)
        judged = run_judge(
            cache_path, lambda cache: judge_qa(samples, judge, cache, args.judge_workers, args.protocol)
        )
        scores["judge"] = judged.summary()
        result["judge_cache"] = str(cache_path)
        result["judgments"] = judgment_rows(judged)
        table = tables.qa_table({_table_row(args): {"QA": judged}}, datasets=("QA",))
    else:
        table = tables.qa_table({_table_row(args): {}}, datasets=("QA",)).split("\n\nJudge:")[0]
        table += "\n\nJudge: none (exact match only)\n" + tables.protocol_line([args.protocol])
    exact = scores["exact_match"]
    table += f"\nExact-match accuracy: {exact['accuracy']:.1f} ({exact['num_correct']} of {exact['num_questions']})"
    return scores, table


def run_score(args: argparse.Namespace) -> int:
    """Run `pite eval score`; returns the exit status (module docstring)."""
    from pite.core.file_writing import write_json

    if args.output is not None and Path(args.output).exists() and not args.overwrite:
        print(
            f"pite eval score: {args.output} exists: give --overwrite to replace it, or another --output",
            file=sys.stderr,
        )
        return 2
    try:
        result = _score(args)
    except JudgeStopped as error:
        print(f"pite eval score: judge failed: {error}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError, KeyError) as error:
        message = str(error) if not isinstance(error, KeyError) else f"missing field {error}"
        print(f"pite eval score: {message}", file=sys.stderr)
        return 2
    print(result["table"])
    if args.output is not None:
        write_json(args.output, result)
        print(f"\nresults written to {args.output}")
    return 0
