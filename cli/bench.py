"""`python benchmarks/run.py`: run the benchmark suite of a source checkout (the `benchmarks/` folder next to this
package).

`benchmarks/` is not installed (it is a development tool, not part of the library), so `pite` has no `bench`
command (`pite bench` says what to run instead). This module loads the folder by path as the package
`pite_benchmarks`. Where the folder is elsewhere, point PITE_BENCHMARKS_DIR at it.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS_PACKAGE = "pite_benchmarks"


def benchmarks_dir() -> Path:
    """PITE_BENCHMARKS_DIR, else `benchmarks/` beside this package's folder in the checkout."""
    configured = os.environ.get("PITE_BENCHMARKS_DIR")
    return Path(configured) if configured else Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmarks(directory: Path | None = None) -> ModuleType:
    """Import the benchmark folder as the package `pite_benchmarks` (once per process) and return its `suite`.

    Raises:
        FileNotFoundError: the folder has no `__init__.py` (not a source checkout), naming the path tried.
        ImportError: a different folder was already loaded under that name in this process.
    """
    directory = (directory or benchmarks_dir()).resolve()
    init = directory / "__init__.py"
    if not init.is_file():
        raise FileNotFoundError(
            f"pite bench needs the benchmarks/ folder of a PiTe source checkout; {init} does not exist "
            "(set PITE_BENCHMARKS_DIR to the folder)"
        )
    loaded = sys.modules.get(BENCHMARKS_PACKAGE)
    if loaded is not None:
        if Path(loaded.__file__).resolve() != init:
            raise ImportError(f"{BENCHMARKS_PACKAGE} is already loaded from {loaded.__file__}, not {init}")
        return importlib.import_module(f"{BENCHMARKS_PACKAGE}.suite")
    spec = importlib.util.spec_from_file_location(
        BENCHMARKS_PACKAGE, init, submodule_search_locations=[str(directory)]
    )
    package = importlib.util.module_from_spec(spec)
    sys.modules[BENCHMARKS_PACKAGE] = package
    try:
        spec.loader.exec_module(package)
        return importlib.import_module(f"{BENCHMARKS_PACKAGE}.suite")
    except BaseException:
        sys.modules.pop(BENCHMARKS_PACKAGE, None)
        raise


def _suite_or_exit() -> ModuleType:
    try:
        return load_benchmarks()
    except FileNotFoundError as error:
        print(f"pite bench: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except SyntaxError as error:  # the folder PITE_BENCHMARKS_DIR names holds a broken file: say which, no traceback
        print(f"pite bench: {error.filename}:{error.lineno}: not valid Python ({error.msg})", file=sys.stderr)
        raise SystemExit(2) from None


def build_parser(command: str = "bench") -> argparse.ArgumentParser:
    """The `pite bench` options (see `benchmarks/suite.py`)."""
    suite = _suite_or_exit()
    parser = argparse.ArgumentParser(
        prog=f"pite {command}", description=suite.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    suite.add_arguments(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    return parser


def run(command: str, args: argparse.Namespace) -> int:
    """Run the benchmarks; 0 all rows ran and met their targets, 1 a row failed or missed, 2 bad options."""
    from pite.core.errors import OutputExistsError

    json_file = getattr(args, "json", None)
    if json_file is not None and Path(json_file).exists() and not args.overwrite and not args.list:
        # checked before the rows run (minutes), not when the results are written
        raise OutputExistsError(
            f"{json_file} already exists (pass --overwrite to replace it)", path=json_file, field="--json"
        )
    return _suite_or_exit().run(args)


def main(argv: list[str] | None = None) -> int:
    """`python benchmarks/run.py` and `python -m pite.cli.bench`."""
    from pite.core.errors import UserInputError, report

    args = build_parser().parse_args(argv)
    try:
        return run("bench", args)
    except UserInputError as error:
        return report("bench", error)


if __name__ == "__main__":
    sys.exit(main())
