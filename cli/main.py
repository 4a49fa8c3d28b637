"""The `pite` command: one entry point, subcommands owned by each area of the package.

Each area module named in `SUBCOMMANDS` provides two functions:
    build_parser(command: str) -> argparse.ArgumentParser
    run(command: str, args: argparse.Namespace) -> int
They are imported only when their command runs, so `pite --help` starts fast and a broken area cannot break others.

Bad input is reported here, in one place (see `pite.core.errors`): a `UserInputError`, or a missing / unreadable /
already existing path, that escapes a command is printed as one line naming the file or field, exit status 2.
Any other exception is a bug and keeps its traceback. PITE_TRACEBACK=1 shows the traceback of bad input too.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pite.core.errors import is_input_error, report, show_tracebacks

# command -> (module providing it, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("pite.demo.cli", "generate a synthetic world, train the 3 stages of a tiny PiTe, evaluate, report"),
    "train": ("pite.training.cli", "train one stage of the recipe (--stage 1|2|3 --config FILE [key=value ...])"),
    "extract-features": ("pite.training.cli", "run the frozen CLIP tower once over videos and cache frame features"),
    "eval": (
        "pite.eval.cli",
        "evaluate: grounding | dense-captioning | qa | trajectory | score (predictions files, no model)",
    ),
    "annotate": ("pite.annotation.cli", "build PiTe-143k-style trajectory annotations from captioned videos"),
    "build": ("pite.hub.cli", "assemble an untrained PiTe from local Llama/Vicuna and CLIP checkpoints"),
    "convert-original": ("pite.hub.cli", "convert the authors' released checkpoints (LoRA stages) into this format"),
    "export": ("pite.hub.cli", "write a hub-ready folder (remote code, processor, safetensors, model card)"),
    "push": ("pite.hub.cli", "upload an exported folder to the Hugging Face Hub"),
}
# Commands of a source checkout, not of the installed package: what to run instead.
CHECKOUT_COMMANDS = {
    "bench": "the benchmarks are not installed with pite; from a source checkout run `python benchmarks/run.py` "
    "(same options; see benchmarks/RESULTS.md)",
}


def _top_level_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pite",
        description="PiTe: pixel-temporal alignment for large video-language models.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n"
        + "\n".join(f"  {name:<18} {help_}" for name, (_, help_) in SUBCOMMANDS.items())
        + "\n\nRun `pite COMMAND --help` for a command's options.",
    )
    parser.add_argument("command", choices=sorted(SUBCOMMANDS), metavar="COMMAND")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        _top_level_parser().print_help()
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command in CHECKOUT_COMMANDS:
        print(f"pite {command}: {CHECKOUT_COMMANDS[command]}", file=sys.stderr)
        return 2
    if command not in SUBCOMMANDS:
        _top_level_parser().parse_args([command])  # prints the usage error and exits with status 2
    module_name = SUBCOMMANDS[command][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            print(
                f"pite: the '{command}' command is not available in this installation ({module_name} missing)",
                file=sys.stderr,
            )
            return 2
        raise
    parser = module.build_parser(command)
    parser.prog = f"pite {command}"
    args = parser.parse_args(rest)
    try:
        return int(module.run(command, args) or 0)
    except Exception as error:
        if not is_input_error(error) or show_tracebacks():
            raise
        return report(command, error)


if __name__ == "__main__":
    sys.exit(main())
