"""transformers' own common model tests, fetched at test time from the installed version's source distribution.

The mixins are transformers' code: they are never copied into this repository. `common_tests()` downloads the
sdist of the installed transformers version from PyPI once (`pip download --no-deps --no-binary :all:`), extracts its
`tests/` folder under `~/.cache/pite-transformers-tests/<version>/` (override with `PITE_TRANSFORMERS_TESTS_CACHE`)
as the package `transformers_common_tests`, and imports `test_modeling_common` from there.

The sdist (checked for 5.24.0) ships `tests/test_modeling_common.py` but not the files it imports from sub-folders:
`generation/test_utils.py` (`GenerationTesterMixin`), `exporters/test_export.py` (`ExportTesterMixin`) and
`utils/test_configuration_utils.py`. No other PyPI artefact of transformers holds them. Where one is missing, the
module is provided here instead: `GenerationTesterMixin` is our own test class of the same behaviours
(`generation_behaviours.PiTeGenerationTests`), `ExportTesterMixin` an empty base (no torch.export tests run), and
`config_common_kwargs` an empty dict: `ConfigTester` reads it only in `check_config_arguments_init`, which returns
before reading it for composite configs such as PiTe's.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tarfile
import tempfile
import types
from pathlib import Path

import transformers

PACKAGE = "transformers_common_tests"
REQUIRED = "test_modeling_common.py"


def cache_root() -> Path:
    base = os.environ.get("PITE_TRANSFORMERS_TESTS_CACHE") or Path.home() / ".cache" / "pite-transformers-tests"
    return Path(base) / transformers.__version__


def _download_and_extract(root: Path) -> None:
    version = transformers.__version__
    with tempfile.TemporaryDirectory() as scratch:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--quiet",
            "--dest",
            scratch,
            f"transformers=={version}",
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        archives = list(Path(scratch).glob("transformers-*.tar.gz"))
        if done.returncode != 0 or not archives:
            raise RuntimeError(f"could not download the transformers {version} sdist from PyPI: {done.stderr[-500:]}")
        staging = Path(scratch) / PACKAGE
        prefix = f"transformers-{version}/tests/"
        with tarfile.open(archives[0]) as archive:
            for member in archive.getmembers():
                if member.isfile() and member.name.startswith(prefix) and member.name.endswith(".py"):
                    target = staging / member.name[len(prefix) :]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.extractfile(member).read())
        if not (staging / REQUIRED).is_file():
            raise RuntimeError(f"the transformers {version} sdist holds no tests/{REQUIRED}")
        (staging / "__init__.py").touch()
        root.mkdir(parents=True, exist_ok=True)
        try:  # a concurrent run may have finished first: keep its copy
            os.replace(staging, root / PACKAGE)
        except OSError:
            if not (root / PACKAGE / REQUIRED).is_file():
                raise


def _provide(name: str, **attributes: object) -> None:
    """Register `transformers_common_tests.<name>` in sys.modules unless the sdist has that file."""
    parts = name.split(".")
    if (cache_root() / PACKAGE).joinpath(*parts[:-1], parts[-1] + ".py").is_file():
        return
    for depth in range(1, len(parts) + 1):
        full = ".".join([PACKAGE, *parts[:depth]])
        module = sys.modules.get(full) or types.ModuleType(full)
        if depth < len(parts):
            module.__path__ = []
        sys.modules[full] = module
    vars(sys.modules[".".join([PACKAGE, *parts])]).update(attributes)


def _ensure_cache() -> None:
    """Download and extract the sdist's tests once; make `transformers_common_tests` importable."""
    root = cache_root()
    if not (root / PACKAGE / REQUIRED).is_file():
        _download_and_extract(root)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))


def _load(generation_tests: type) -> None:
    _ensure_cache()
    _provide("generation.test_utils", GenerationTesterMixin=generation_tests)
    _provide("exporters.test_export", ExportTesterMixin=type("ExportTesterMixin", (), {}))
    _provide("utils.test_configuration_utils", config_common_kwargs={})


def common_tests(generation_tests: type) -> types.ModuleType:
    """transformers' `test_modeling_common` module, with `generation_tests` standing in for a missing
    `GenerationTesterMixin`."""
    _load(generation_tests)
    return importlib.import_module(f"{PACKAGE}.test_modeling_common")


def configuration_tests(generation_tests: type) -> types.ModuleType:
    """transformers' `test_configuration_common` module (its `ConfigTester`)."""
    _load(generation_tests)
    return importlib.import_module(f"{PACKAGE}.test_configuration_common")


def processing_tests() -> types.ModuleType:
    """transformers' `test_processing_common` module (its `ProcessorTesterMixin`).

    It imports `url_to_local_path` from the repository's `utils/fetch_hub_objects_for_ci.py`, which the sdist does
    not ship; it only maps the Hub URLs of its sample media to a CI cache. Those URLs are never reached offline: a
    stand-in returns them unchanged, and the tests that read them are skipped in the test class, with the reason."""
    _ensure_cache()
    if "fetch_hub_objects_for_ci" not in sys.modules:
        stand_in = types.ModuleType("fetch_hub_objects_for_ci")
        stand_in.url_to_local_path = lambda url, *args, **kwargs: url
        sys.modules["fetch_hub_objects_for_ci"] = stand_in
    return importlib.import_module(f"{PACKAGE}.test_processing_common")


def video_processing_tests() -> types.ModuleType:
    """transformers' `test_video_processing_common` module (its `VideoProcessingTestMixin`)."""
    _ensure_cache()
    return importlib.import_module(f"{PACKAGE}.test_video_processing_common")
