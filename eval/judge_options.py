"""What `pite eval qa` and `pite eval score` share about the judge: the backend their options name, where its
cache goes, and the error that stops a run once the judge has failed for good. No heavy imports (`--help`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


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
