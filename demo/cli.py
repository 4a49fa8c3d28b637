"""`pite demo` command (see `pite.demo.pipeline`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def build_parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Run PiTe end to end on a generated synthetic world.")
    parser.add_argument("--out", default="pite-demo", help="output folder (default: ./pite-demo)")
    parser.add_argument("--quick", action="store_true", help="a smaller world and fewer steps: a smoke test")
    parser.add_argument("--seed", type=int, default=0, help="seed of the world and of training")
    parser.add_argument("--overwrite", action="store_true", help="write into OUT even if it is not empty")
    jobs = parser.add_mutually_exclusive_group()
    jobs.add_argument(
        "--ablation",
        action="store_true",
        help="the paper's stage-2 ablation: the whole demo per seed (--seeds) and per variant (full recipe, stage 2's "
        "trajectory loss off, stage 2 skipped) into OUT/seed{S}/{variant}, the table in OUT/ablation.md; per seed, "
        "the world, the stand-ins and stage 1 are made once (by the first variant) and shared",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of --ablation (default 0 1 2)")
    jobs.add_argument(
        "--probe-stand-in",
        action="store_true",
        help="instead of the demo: train the demo's stand-in LLM architecture from scratch to read the span of a "
        "repeated word among --probe-positions words and answer it in the demo's grounding format "
        "(`pite.demo.counting_probe`); writes OUT/stand_in_probe.json",
    )
    parser.add_argument("--probe-steps", type=int, default=2000, help="training steps of --probe-stand-in")
    parser.add_argument("--probe-positions", type=int, default=100, help="words per sample of --probe-stand-in")
    parser.add_argument(
        "--probe-layers", type=int, default=None, help="layers of the probed stand-in (default: the demo's)"
    )
    return parser


def run(command: str, args: argparse.Namespace) -> int:
    import dataclasses

    from pite.core.errors import OutputExistsError
    from pite.demo.pipeline import DemoSettings, run_demo

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not args.overwrite)):
        raise OutputExistsError(
            f"{out} already exists and is not an empty folder (pass --overwrite to write into it)",
            path=out,
            field="--out",
        )
    settings = DemoSettings.quick() if args.quick else DemoSettings()
    if args.probe_stand_in:
        from pite.demo.pipeline import run_stand_in_probe

        layers = {} if args.probe_layers is None else {"text_layers": args.probe_layers}
        probed = dataclasses.replace(settings, seed=args.seed, **layers)
        run_stand_in_probe(out, probed, args.probe_steps, args.probe_positions)
        return 0
    if args.ablation:
        from pite.demo.ablation import run_ablation

        run_ablation(args.out, settings, seeds=tuple(args.seeds))
        return 0
    run_demo(args.out, dataclasses.replace(settings, seed=args.seed))
    return 0
