"""Repository hygiene that CI checks besides the code: the documents files point to exist, and the test command
of the README is the one CI runs (linters first)."""

from __future__ import annotations

import configparser
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = re.compile(r"(?<![\w./-])((?:[\w-]+/)*[\w-]+\.md)\b")
# Names that are not documents of the repository: files the demo writes (report.md, ablation.md), the README.md of
# exported folders, and files tests create in temporary folders.
NOT_REPOSITORY_DOCUMENTS = {"report.md", "ablation.md", "notes.md", "card.md"}


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / line for line in listed.splitlines() if (ROOT / line).is_file()]


def test_every_named_document_is_in_the_repository():
    documents = {path.relative_to(ROOT).as_posix() for path in tracked_files() if path.suffix == ".md"}
    names = {Path(document).name for document in documents}
    missing = []
    for path in tracked_files():
        if path.suffix not in (".py", ".md", ".cfg", ".toml", ".yaml", ".txt", ".jinja") and path.name != "run":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            for named in DOCUMENT.findall(line):
                if Path(named).name in NOT_REPOSITORY_DOCUMENTS:
                    continue
                # A path must exist as written (from the root); a bare name must be some document's name.
                found = named in documents if "/" in named else named in names
                if not found:
                    missing.append(f"{path.relative_to(ROOT)}:{number}: {named}")
    assert not missing, "documents named but not in the repository:\n" + "\n".join(missing)
    absent = "ABSENT" + ".md"  # spelled apart, so that this file names no missing document itself
    assert DOCUMENT.findall(f"see {absent} and docs/FORMATS.md, not x.mdx") == [absent, "docs/FORMATS.md"]


def readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    after = readme.split("exactly what `.ci/run` runs", 1)[1]
    return after.split("```bash\n", 1)[1].split("\n```", 1)[0].strip()


def test_ci_runs_exactly_the_readme_test_command_with_the_linters_first():
    command = readme_test_command()
    ci_lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci_lines[-1].strip() == command
    steps = [step.strip() for step in command.split("&&")]
    lint, fmt, tests = (
        next(i for i, s in enumerate(steps) if key in s) for key in ("ruff check .", "ruff format --check .", "pytest")
    )
    assert lint < fmt < tests


def test_ruff_is_pinned_in_the_test_extra():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    extra = [line.strip() for line in config["options.extras_require"]["test"].splitlines()]
    assert any(re.fullmatch(r"ruff==[\d.]+", line) for line in extra), extra
