"""The package's import graph has no circles: between top-level folders, and between modules of one folder.

Read from the source with `ast` (nothing is imported): every `import` and `from ... import` anywhere in a module,
function-level ones included (a lazy import is still a dependency), plus string literals naming a `pite.*` module
(`pite.cli.main` dispatches its commands with `importlib.import_module`). The folders are those setup.cfg installs
under `pite.` (and `benchmarks/`, run from a checkout).
"""

from __future__ import annotations

import ast
import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULE_NAME = re.compile(r"^pite(\.\w+)+$")


def installed_folders() -> dict[str, Path]:
    """`pite.X` package -> its folder, from setup.cfg's package_dir, plus benchmarks/."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    folders = {}
    for line in config["options"]["package_dir"].strip().splitlines():
        package, _, folder = (part.strip() for part in line.partition("="))
        folders[package.removeprefix("pite.")] = ROOT / folder
    if (ROOT / "benchmarks" / "__init__.py").is_file():
        folders.setdefault("benchmarks", ROOT / "benchmarks")
    return folders


def module_files(folders: dict[str, Path]) -> dict[str, Path]:
    """Dotted module name (without `pite.`; a package is its `__init__`) -> file."""
    modules = {}
    for top, folder in folders.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if any(part.startswith(".") for part in parts):
                continue
            name = ".".join((top, *parts))
            modules[name.removesuffix(".__init__")] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of `name` that is a module of the package, or None (outside it)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imported_modules(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Package modules that `module` imports (names without `pite.`)."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, *([node.module] if node.module else [])])
                origin = f"pite.{origin}"
            else:
                origin = node.module or ""
            # `from a import b`: b may be a submodule of a, else a name defined in a.
            names += [f"{origin}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_NAME.match(node.value):
            names.append(node.value)
    found = set()
    for name in names:
        if name.startswith("pite."):
            target = _resolve(name.removeprefix("pite."), modules)
            if target is not None and target != module:
                found.add(target)
    return found


def import_graph() -> tuple[dict[str, set[str]], dict[str, str]]:
    folders = installed_folders()
    modules = module_files(folders)
    graph = {module: imported_modules(module, path, modules) for module, path in modules.items()}
    return graph, {module: module.split(".")[0] for module in modules}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _example(graph: dict[str, set[str]], folder_of: dict[str, str], source: str, target: str) -> str:
    module, imported = next(
        (m, t)
        for m, targets in sorted(graph.items())
        for t in sorted(targets)
        if folder_of[m] == source and folder_of[t] == target
    )
    return f"{source} -> {target} (pite.{module} imports pite.{imported})"


def test_no_circle_between_top_level_folders():
    graph, folder_of = import_graph()
    folders: dict[str, set[str]] = {}
    for module, targets in graph.items():
        folders.setdefault(folder_of[module], set()).update(
            folder_of[t] for t in targets if folder_of[t] != folder_of[module]
        )
    found = cycles(folders)
    described = [
        [_example(graph, folder_of, a, b) for a in component for b in component if b in folders[a]]
        for component in found
    ]
    assert not found, f"folders that import each other (directly or round a circle): {described}"


def test_no_circle_between_modules_of_one_folder():
    graph, folder_of = import_graph()
    within = {module: {t for t in targets if folder_of[t] == folder_of[module]} for module, targets in graph.items()}
    # A package's __init__ re-exporting its modules is not a circle when they import only their siblings.
    within = {
        module: {t for t in targets if not (t == folder_of[module] and "." in module)}
        for module, targets in within.items()
    }
    assert not cycles(within), f"modules that import each other: {cycles(within)}"


def test_the_graph_is_read(tmp_path):
    """The walk finds known edges (a broken walk would pass the tests above vacuously)."""
    graph, _ = import_graph()
    assert "data.collator" in graph["training.api"]
    assert "data.feature_cache" in graph["data.featurize"]
    assert "training.cli" in graph["cli.main"]  # a command module named by string
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
