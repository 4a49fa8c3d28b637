"""What `pite eval qa` and `pite eval score` share about the judge: the backend their options name, where its
cache goes, and the error that stops a run once the judge has failed for good. No heavy imports (`--help`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

Judged = TypeVar("Judged")


class JudgeStopped(RuntimeError):
    """The judge failed for good; what it answered is cached."""


def sibling(output: Path, suffix: str) -> Path:
    """`output` with its suffix replaced by `suffix` (a file written next to the results)."""
    return output.with_name(output.stem + suffix)


def judge_backend(args: argparse.Namespace) -> Any:
    """The judge that the `--judge*` options describe: a local transformers model or an OpenAI-compatible API."""
    from pite.eval.judge_backends import OpenAIChatJudge, TransformersJudge

    if args.judge == "local":
        return TransformersJudge.from_pretrained(args.judge_model, max_new_tokens=args.judge_max_new_tokens)
    return OpenAIChatJudge(
        args.judge_base_url,
        args.judge_model,
        api_key_env=args.judge_api_key_env,
        temperature=args.judge_temperature,
        timeout=args.judge_timeout,
        max_retries=args.judge_max_retries,
        seed=args.judge_seed,
    )


def run_judge(cache_path: Path, judge: Callable[[Any], Judged]) -> Judged:
    """`judge(cache)` with the `JudgmentCache` at `cache_path`, closed afterwards. A judge that fails for good stops
    the run with `JudgeStopped`, saying where the replies received so far are kept."""
    from pite.eval.judge import JudgmentCache
    from pite.eval.judge_backends import JudgeRequestError

    cache = JudgmentCache(cache_path)
    try:
        return judge(cache)
    except JudgeRequestError as error:
        raise JudgeStopped(
            f"{error}; the replies received so far are cached in {cache_path}: rerun to continue"
        ) from error
    finally:
        cache.close()


def judgment_rows(judged: Any) -> list[dict[str, Any]]:
    """The per-sample judgments of a `QAJudgeResult` as the results JSON keeps them."""
    return [
        {
            "sample_id": j.sample_id,
            "verdict": j.verdict,
            "score": j.score,
            "skipped_reason": j.skipped_reason,
            "raw_reply": j.raw_reply,
        }
        for j in judged.judgments
    ]
