"""`pite eval grounding | dense-captioning | qa | trajectory`: a saved PiTe on a benchmark file -> table, results JSON.

    pite eval grounding --model DIR --data val_2.json --videos DIR --output runs/anet_grounding.json
    pite eval grounding --format charades-sta --charades-csv Charades_v1_test.csv --data charades_sta_test.txt ...
    pite eval dense-captioning --model DIR --data val_2.json --videos DIR --output runs/anet_dvc.json
    pite eval qa --format msvd-qa --youtube-mapping youtube_mapping.txt --data test_qa.json --videos DIR \\
        --judge openai --judge-model gpt-3.5-turbo-0125 --output runs/msvd.json
    pite eval trajectory --model DIR --data trajectories.jsonl --videos DIR --output runs/trajectories.json
    pite eval score grounding --predictions vtimellm_log.txt --references val_2.json [--format vtimellm]
    pite eval score qa --predictions video_chatgpt_preds.json [--references test_a.json] [--judge openai ...]

`--protocol reference` (default: the numbers of VTimeLLM's evaluation code and Video-ChatGPT's judge script, quirks
included) or `corrected` (see eval/README.md); every result and table says which. `score` reads a predictions
file in VTimeLLM's log, Video-ChatGPT's or our format and scores it without any model or video.

Generation tasks write every answer to `--predictions` (default `OUTPUT` with `.predictions.json`), atomically, as
they are made: rerunning the same command resumes (records already answered are not asked again; settings that would
change the answers must match, or the file is refused). Missing or unreadable videos are skipped, counted and listed
with their reason in the predictions file and the results. QA judgments are cached in `--judge-cache` (default
`OUTPUT` with `.judgments.sqlite`): a rerun asks the judge nothing it has answered.

Exit status: 0 done; 1 the run stopped (model or judge failure; what was done is saved: rerun to resume);
2 bad input (malformed dataset file, missing file, settings that do not match the predictions file, no answerable
record).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pite.core.arguments import positive_int
from pite.core.loading import DTYPE_NAMES
from pite.eval.judge_options import JudgeStopped, judge_backend, judgment_rows, run_judge, sibling
from pite.eval.protocols import DEFAULT_PROTOCOL, PROTOCOLS

TASKS = ("grounding", "dense-captioning", "qa", "trajectory", "score")
GROUNDING_FORMATS = ("activitynet-captions", "charades-sta")
QA_FORMATS = {"msvd-qa": "MSVD-QA", "msrvtt-qa": "MSRVTT-QA", "activitynet-qa": "ActivityNet-QA"}
DEFAULT_JUDGE_URL = "https://api.openai.com/v1"
CENTRE_ROW = "constant centre (0.5, 0.5)"


def _add_model_options(parser: argparse.ArgumentParser, default_batch_size: int) -> None:
    parser.add_argument("--model", required=True, help="saved PiTe folder (model + processor)")
    parser.add_argument("--model-name", default=None, help="row name in the table (default: the folder's name)")
    parser.add_argument("--data", required=True, help="the benchmark annotation file")
    parser.add_argument("--videos", required=True, help="folder of the videos")
    parser.add_argument("--output", required=True, help="results JSON to write (the table is printed too)")
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=default_batch_size,
        help=f"videos per forward pass (default {default_batch_size})",
    )
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument(
        "--dtype",
        choices=DTYPE_NAMES,
        default=None,
        help="model dtype (default: float32 on CPU, the checkpoint's on GPU)",
    )
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="load model and processor with the folder's own code (AutoModel/AutoProcessor) instead "
        "of the installed pite classes",
    )


def _add_generation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--predictions",
        default=None,
        help="resumable predictions JSON (default: OUTPUT with the suffix .predictions.json)",
    )
    parser.add_argument("--max-new-tokens", type=positive_int, default=256, help="answer length limit (default 256)")
    parser.add_argument(
        "--num-frames",
        type=positive_int,
        default=None,
        help="frames sampled per video (default: the processor's N); times in answers are read "
        "as indices of these frames",
    )
    parser.add_argument("--do-sample", action="store_true", help="sample instead of greedy decoding (default greedy)")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (with --do-sample)")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (with --do-sample)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed, set before every batch (with --do-sample)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_protocol_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default=DEFAULT_PROTOCOL,
        help="reference (default): the numbers of VTimeLLM's evaluation code / Video-ChatGPT's judge "
        "script, quirks included; corrected: our fixes (listed in eval/README.md)",
    )


def _add_judge_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    judge = parser.add_argument_group("judge (Video-ChatGPT protocol; the judge model and temperature are recorded)")
    judge.add_argument(
        "--judge",
        choices=("openai", "local"),
        required=required,
        help="openai: any OpenAI-compatible chat-completions endpoint; local: a transformers causal LM",
    )
    judge.add_argument(
        "--judge-model",
        required=required,
        help="endpoint model name (e.g. gpt-3.5-turbo-0125), or the local model's folder",
    )
    judge.add_argument(
        "--judge-base-url", default=DEFAULT_JUDGE_URL, help=f"endpoint base URL (default {DEFAULT_JUDGE_URL})"
    )
    judge.add_argument(
        "--judge-api-key-env",
        default="OPENAI_API_KEY",
        help="environment variable holding the API key (default OPENAI_API_KEY; unset: no key sent)",
    )
    judge.add_argument(
        "--judge-temperature",
        type=float,
        default=0.0,
        help="judge sampling temperature (default 0.0; a local judge is always greedy)",
    )
    judge.add_argument(
        "--judge-cache",
        default=None,
        help="SQLite cache of judge replies (default: OUTPUT with the suffix .judgments.sqlite)",
    )
    judge.add_argument("--judge-workers", type=positive_int, default=1, help="concurrent judge requests (default 1)")
    judge.add_argument("--judge-timeout", type=float, default=60.0, help="seconds per judge request (default 60)")
    judge.add_argument("--judge-max-retries", type=int, default=5, help="retries of a failed request (default 5)")
    judge.add_argument("--judge-seed", type=int, default=None, help="'seed' sent to endpoints that support it")
    judge.add_argument(
        "--judge-max-new-tokens",
        type=positive_int,
        default=64,
        help="reply length limit of a local judge (default 64)",
    )


def build_parser(command: str) -> argparse.ArgumentParser:
    """The argument parser of `pite eval`; the task is its first positional argument."""
    if command != "eval":
        raise ValueError(f"pite.eval.cli has no command {command!r}; it provides 'eval'")
    parser = argparse.ArgumentParser(
        prog="pite eval",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run `pite eval TASK --help` for a task's options.",
    )
    tasks = parser.add_subparsers(dest="task", required=True, metavar="TASK")

    grounding = tasks.add_parser("grounding", help="temporal grounding: R@1 at IoU 0.3/0.5/0.7, mIoU")
    _add_model_options(grounding, default_batch_size=8)
    grounding.add_argument(
        "--format",
        choices=GROUNDING_FORMATS,
        default="activitynet-captions",
        help="annotation format (default activitynet-captions)",
    )
    grounding.add_argument(
        "--charades-csv",
        nargs="+",
        default=None,
        help="Charades CSV(s) with the video lengths (needed for charades-sta)",
    )
    _add_generation_options(grounding)
    _add_protocol_option(grounding)

    captioning = tasks.add_parser("dense-captioning", help="dense video captioning: SODA_c, CIDEr, METEOR, P/R")
    _add_model_options(captioning, default_batch_size=8)
    captioning.add_argument(
        "--format", choices=("activitynet-captions",), default="activitynet-captions", help="annotation format"
    )
    _add_generation_options(captioning)
    _add_protocol_option(captioning)

    qa = tasks.add_parser("qa", help="open-ended video QA judged by an LLM: accuracy and score")
    _add_model_options(qa, default_batch_size=8)
    qa.add_argument("--format", choices=tuple(QA_FORMATS), required=True, help="annotation format")
    qa.add_argument("--youtube-mapping", default=None, help="MSVD's youtube_mapping.txt (needed for msvd-qa)")
    qa.add_argument(
        "--answers",
        default=None,
        help="ActivityNet-QA answers file *_a.json (needed for activitynet-qa; --data is the questions file *_q.json)",
    )
    _add_generation_options(qa)
    _add_judge_options(qa)
    _add_protocol_option(qa)

    trajectory = tasks.add_parser(
        "trajectory",
        help="teacher-forced trajectory accuracy on PiTe-143k-style data: "
        "masked L1, PCK@5%%/10%%, beside the constant-centre baseline",
    )
    _add_model_options(trajectory, default_batch_size=1)
    trajectory.add_argument(
        "--max-events",
        type=positive_int,
        default=None,
        help="keep only the first events of each video (as training's max_events_per_video)",
    )
    trajectory.add_argument(
        "--skip-bad-records",
        action="store_true",
        help="count malformed records as skipped instead of stopping at the first",
    )
    trajectory.add_argument("--no-progress", action="store_true", help="no progress bar")

    from pite.eval.scoring import SCORE_FORMATS, SCORE_TASKS

    score = tasks.add_parser(
        "score",
        help="score a predictions file of any model (VTimeLLM log, Video-ChatGPT QA, "
        "pite, ActivityNet submission): no model, no video",
    )
    score.add_argument("score_task", choices=SCORE_TASKS, metavar="TASK", help=f"one of {', '.join(SCORE_TASKS)}")
    score.add_argument("--predictions", required=True, help="the predictions file")
    score.add_argument(
        "--references",
        default=None,
        help="ground truth: ActivityNet Captions JSON (grounding, dense-captioning; a VTimeLLM log's "
        "grounding lines can go without: their stored IoUs are used); for qa optionally "
        "ActivityNet-QA's *_a.json (official exact-match accuracy over all its questions)",
    )
    score.add_argument(
        "--charades-csv",
        nargs="+",
        default=None,
        help="grounding with Charades-STA references (--references charades_sta_test.txt): the "
        "Charades CSV(s) with the video lengths",
    )
    score.add_argument(
        "--format",
        choices=SCORE_FORMATS,
        default="auto",
        help="predictions layout (default auto: recognised from the content)",
    )
    _add_protocol_option(score)
    score.add_argument(
        "--num-frames",
        type=positive_int,
        default=100,
        help="frames the answers' indices count (default 100, VTimeLLM's and PiTe's)",
    )
    score.add_argument(
        "--model-name", default=None, help="row name in the table (default: the predictions file's name)"
    )
    score.add_argument("--output", default=None, help="results JSON to write (the table is printed in any case)")
    score.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    _add_judge_options(score, required=False)
    return parser


class UsageError(ValueError):
    """Options that do not fit together."""


def _check_companions(args: argparse.Namespace) -> None:
    """UsageError for options that do not fit the task's --format or --judge (checked before any model loads)."""
    if getattr(args, "judge", None) == "local" and args.judge_temperature != 0.0:
        raise UsageError("a local judge decodes greedily: --judge-temperature must be 0")
    needs = {"charades-sta": "charades_csv", "msvd-qa": "youtube_mapping", "activitynet-qa": "answers"}
    for fmt, option in needs.items():
        given = getattr(args, option, None) is not None
        flag = "--" + option.replace("_", "-")
        if args.format == fmt and not given:
            raise UsageError(f"--format {fmt} needs {flag}")
        if given and args.format != fmt:
            raise UsageError(f"{flag} belongs to --format {fmt}, not {args.format}")


def read_dataset(args: argparse.Namespace):
    """The `EvalDataset` named by the task, `--format`, `--data` and its companion files."""
    from pite.eval import datasets

    _check_companions(args)
    videos = args.videos
    if args.task == "dense-captioning":
        return datasets.read_activitynet_captions(args.data, videos, task="dense_captioning")
    if args.task == "grounding":
        if args.format == "charades-sta":
            return datasets.read_charades_sta(args.data, args.charades_csv, videos)
        return datasets.read_activitynet_captions(args.data, videos, task="grounding")
    if args.format == "msvd-qa":
        return datasets.read_msvd_qa(args.data, args.youtube_mapping, videos)
    if args.format == "msrvtt-qa":
        return datasets.read_msrvtt_qa(args.data, videos)
    return datasets.read_activitynet_qa(args.data, args.answers, videos)


def _model_name(args: argparse.Namespace) -> str:
    return args.model_name or Path(args.model).resolve().name


def _not_needed(records: list) -> list:
    raise RuntimeError("internal error: every record was answered already, the model should not be called")


def _generate(args: argparse.Namespace, dataset, output: Path) -> tuple[Any, Any, int, dict[str, Any]]:
    """Answer every record not yet in the predictions file; (store, summary, num_frames, meta)."""
    from pite.core.loading import load_model, load_processor
    from pite.eval.model_runner import GenerationSettings, PiTeGenerator, inference_device_and_dtype
    from pite.eval.predictions import PredictionStore
    from pite.eval.runner import generate_predictions
    from pite.processing.time_pite import MAX_TEXT_FRAMES

    processor = load_processor(args.model, args.trust_remote_code)
    num_frames = args.num_frames or int(processor.num_frames)
    if args.task != "qa" and num_frames > MAX_TEXT_FRAMES:
        raise UsageError(f"times in answers are two-digit frame indices: --num-frames must be <= {MAX_TEXT_FRAMES}")
    settings = GenerationSettings(
        args.max_new_tokens, num_frames, args.do_sample, args.temperature, args.top_p, args.seed
    )
    meta = {
        "task": args.task,
        "format": args.format,
        "data": str(Path(args.data).resolve()),
        "model": str(Path(args.model).resolve()),
        "dtype": args.dtype or "default",
        "prompt": "v1 chat template, pite.eval.prompts",
        "num_frames": num_frames,
        "max_new_tokens": args.max_new_tokens,
        "do_sample": args.do_sample,
        **({"temperature": args.temperature, "top_p": args.top_p, "seed": args.seed} if args.do_sample else {}),
    }
    predictions = Path(args.predictions) if args.predictions else sibling(output, ".predictions.json")
    store = PredictionStore(predictions, meta)
    missing = set(dataset.missing_videos)
    pending = [r for r in dataset.records if not store.has(r.sample_id) and r.video_id not in missing]
    generate_fn = _not_needed
    if pending:
        device, dtype = inference_device_and_dtype(args.device, args.dtype)
        model = load_model(args.model, dtype, device, args.trust_remote_code, eval_mode=True)
        generate_fn = PiTeGenerator(model, processor, settings)
    before = len(store)
    try:
        summary = generate_predictions(dataset, generate_fn, store, args.batch_size, progress=not args.no_progress)
    except BaseException:
        print(
            f"pite eval {args.task}: generation stopped; {len(store) - before} new answers ({len(store)} in all) are "
            f"saved in {predictions}: run the same command again to resume",
            file=sys.stderr,
        )
        raise
    return store, summary, num_frames, meta


def _run_generation_task(args: argparse.Namespace) -> dict[str, Any]:
    from pite.eval import runner, tables

    output = Path(args.output)
    dataset = read_dataset(args)
    if not dataset.records:
        raise UsageError(f"the references file {args.data} holds no queries: nothing to evaluate")
    store, summary, num_frames, meta = _generate(args, dataset, output)
    name = _model_name(args)
    result: dict[str, Any] = {
        "task": args.task,
        "model": name,
        "dataset": dataset.name,
        "settings": meta,
        "protocol": args.protocol,
        "predictions_file": str(store.path),
    }
    if args.task == "grounding":
        scores = runner.score_grounding(dataset, store, num_frames, protocol=args.protocol)
        table = tables.activitynet_table({name: {"grounding": scores}})
    elif args.task == "dense-captioning":
        scores = runner.score_dense_captioning(dataset, store, num_frames, protocol=args.protocol)
        for metric, reason in (scores.get("unavailable") or {}).items():
            print(f"pite eval dense-captioning: {metric} not computed: {reason}", file=sys.stderr)
        table = tables.activitynet_table({name: {"dense_captioning": scores}})
    else:
        cache_path = Path(args.judge_cache) if args.judge_cache else sibling(output, ".judgments.sqlite")
        judge = judge_backend(args)
        judged = run_judge(
            cache_path, lambda cache: runner.score_qa(dataset, store, judge, cache, args.judge_workers, args.protocol)
        )
        scores = judged.summary()
        result["judge_cache"] = str(cache_path)
        result["judgments"] = judgment_rows(judged)
        table = tables.qa_table({name: {QA_FORMATS[args.format]: judged}}, datasets=(QA_FORMATS[args.format],))
        result["exact_match"] = _exact_match(args, dataset, store)
        exact = result["exact_match"]
        table += (
            f"\nExact-match accuracy: {exact['accuracy']:.1f} ({exact['num_correct']} of {exact['num_questions']})"
        )
    answered = sum(1 for r in dataset.records if store.has(r.sample_id))
    result.update(
        scores=scores,
        counts={
            "records": len(dataset.records),
            "answered": answered,
            "generated_now": summary.generated,
            "answered_before": summary.already_done,
            "skipped": len(summary.skipped_samples),
            "missing_videos": len(summary.missing_videos),
        },
        skipped=summary.skip_reasons,
        table=table,
    )
    return result


def _exact_match(args: argparse.Namespace, dataset, store) -> dict[str, Any]:
    """Exact-match accuracy of the stored answers (ActivityNet-QA's official metric, over its answers file)."""
    from pite.eval.judge import QASample
    from pite.eval.scoring import exact_match_scores

    samples = [
        QASample(r.sample_id, r.query or "", r.answer or "", store.output(r.sample_id))
        for r in dataset.records
        if store.has(r.sample_id)
    ]
    answers = args.answers if args.format == "activitynet-qa" else None
    return exact_match_scores(samples, answers, args.protocol)


def _run_trajectory(args: argparse.Namespace) -> dict[str, Any]:
    from pite.eval import tables
    from pite.eval.model_runner import load_for_inference
    from pite.eval.trajectory_runner import evaluate_trajectories

    model, processor = load_for_inference(args.model, args.device, args.dtype, args.trust_remote_code)
    evaluation = evaluate_trajectories(
        model,
        processor,
        args.data,
        args.videos,
        batch_size=args.batch_size,
        max_events=args.max_events,
        skip_bad_records=args.skip_bad_records,
        progress=not args.no_progress,
    )
    name = _model_name(args)
    table = tables.trajectory_table({name: evaluation.scores, CENTRE_ROW: evaluation.baseline})
    # A blank line ends the first Markdown table, or the second one's rows would render as rows of the first.
    table += "\n\n" + tables.phrase_position_table(evaluation.by_phrase_position, name)
    settings = {
        "task": "trajectory",
        "data": str(Path(args.data).resolve()),
        "model": str(Path(args.model).resolve()),
        "num_frames": int(processor.num_frames),
        "max_events": args.max_events,
        "dtype": args.dtype or "default",
    }
    return {
        "task": "trajectory",
        "model": name,
        "dataset": Path(args.data).name,
        "settings": settings,
        **evaluation.to_json(),
        "table": table,
    }


def _check_paths(args: argparse.Namespace) -> None:
    """Before any model loads: the model's weight files are complete, and no file eval writes is one of its inputs
    or a folder."""
    from pite.core.errors import OutputExistsError
    from pite.core.inputs import check_checkpoint_weights, refuse_own_input

    if Path(args.model).is_dir():
        check_checkpoint_weights(args.model)
    inputs = {
        "--data": args.data,
        "--model": args.model,
        "--videos": args.videos,
        "--youtube-mapping": getattr(args, "youtube_mapping", None),
        "--answers": getattr(args, "answers", None),
        **{f"--charades-csv {csv}": csv for csv in getattr(args, "charades_csv", None) or ()},
    }
    for option in ("output", "predictions", "judge_cache"):
        if getattr(args, option, None):
            target = refuse_own_input(getattr(args, option), inputs)
            if target.is_dir():
                raise OutputExistsError(f"--{option.replace('_', '-')} {target} is a folder, not a file", path=target)
    output = Path(args.output)
    if output.is_file():  # a rerun rewrites its own results; any other file there is the user's
        try:
            previous = json.loads(output.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            previous = None
        if not isinstance(previous, dict) or previous.get("task") != args.task:
            raise OutputExistsError(
                f"--output {output} exists and is not the results file of a `pite eval "
                f"{args.task}` run; choose another --output or remove it",
                path=output,
            )


def run(command: str, args: argparse.Namespace) -> int:
    """Run one evaluation task; prints the table, writes `--output`; returns the exit status (see module doc)."""
    from pite.core.file_writing import write_json

    if command != "eval":
        raise ValueError(f"pite.eval.cli has no command {command!r}; it provides 'eval'")
    if args.task == "score":
        from pite.eval.score_cli import run_score

        return run_score(args)
    try:
        _check_paths(args)
        result = _run_trajectory(args) if args.task == "trajectory" else _run_generation_task(args)
    except JudgeStopped as error:
        print(f"pite eval {args.task}: judge failed: {error}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as error:  # DatasetFormatError, BadRecordError, UsageError are ValueErrors
        print(f"pite eval {args.task}: {error}", file=sys.stderr)
        return 2
    write_json(args.output, result)
    print(result["table"])
    skipped = result.get("skipped") or {}
    if skipped:
        print(
            f"\n{len(skipped)} skipped (reasons in {args.output}): e.g. {next(iter(skipped))}: "
            f"{next(iter(skipped.values()))}"
        )
    print(f"\nresults written to {args.output}")
    return 0
