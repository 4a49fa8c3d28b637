"""PiTe benchmarks as a script: `python benchmarks/run.py [options]` is `pite bench [options]` (see suite.py).

OMP_NUM_THREADS=1 python benchmarks/run.py --rows overhead,generation --json results.json
"""

import sys
import types
from pathlib import Path


def _bench_cli() -> types.ModuleType:
    try:
        from pite.cli import bench
    except ModuleNotFoundError as error:
        if error.name not in ("pite", "pite.cli"):
            raise
        # pite is not installed (the GPU machine): map the `pite` namespace onto this checkout, where each folder
        # is the subpackage of the same name, as the editable install does.
        namespace = types.ModuleType("pite")
        namespace.__path__ = [str(Path(__file__).resolve().parents[1])]
        sys.modules["pite"] = namespace
        from pite.cli import bench
    return bench


if __name__ == "__main__":
    # This folder is a package loaded by path (pite.cli.bench): keep its modules (video, models, ...) from
    # shadowing top-level names, as the script's folder would at the head of sys.path.
    if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
        del sys.path[0]
    sys.exit(_bench_cli().main())
