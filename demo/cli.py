"""`pite demo` command (see `pite.demo.pipeline`)."""

from __future__ import annotations

import argparse


def build_parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Run PiTe end to end on a generated synthetic world.")
    parser.add_argument("--out", default="pite-demo", help="output folder (default: ./pite-demo)")
    parser.add_argument("--quick", action="store_true", help="a smaller world and fewer steps: a smoke test")
    parser.add_argument("--seed", type=int, default=0, help="seed of the world and of training")
    return parser


def run(command: str, args: argparse.Namespace) -> int:
    import dataclasses

    from pite.demo.pipeline import DemoSettings, run_demo

    settings = DemoSettings.quick() if args.quick else DemoSettings()
    run_demo(args.out, dataclasses.replace(settings, seed=args.seed))
    return 0
