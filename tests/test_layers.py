"""The layers import only downward (docs/layout in the README): a lower layer never reaches up, so that
the kernel, the pure operators and the store can be used and tested without what is built on them."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# package -> rank; a package may import packages of a lower rank, and itself
LAYERS = {
    "quantumflow": 0,  # the shared kernel: events, instrument key, feature registry, settings
    "operators": 1,
    "store": 1,
    "esg": 1,
    "models": 2,
    "simulator": 2,
    "venues": 1,  # exchange clients: only the kernel below them
    "dataflows": 3,
    "api": 4,
    "dashboards": 4,
    "exchanges": 4,  # local exchanges that replay recordings over the venues' protocols
    "backtest": 4,  # strategies over the flow's books and predictions, on a simulated venue
    "bench": 5,
    "cli": 6,
}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """(top-level project package, line) of every import in the file, at any depth (imports inside
    functions count: they run all the same)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {(name.split(".")[0], node.lineno) for name in names if name.split(".")[0] in LAYERS}
    return found


def upward_imports(root: Path = ROOT) -> list[str]:
    upward = []
    for package, rank in LAYERS.items():
        for path in sorted((root / package).rglob("*.py")):
            for target, line in sorted(imported_packages(path)):
                if target != package and LAYERS[target] >= rank:
                    upward.append(f"{path.relative_to(root)}:{line} imports {target}")
    return upward


def test_every_package_of_the_project_has_a_layer():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages == set(LAYERS)


def test_no_layer_imports_one_above_it_or_beside_it():
    assert upward_imports() == []


@pytest.mark.parametrize(
    ("package", "source", "expected"),
    [
        ("store", "from operators.features import FEATURE_NAMES\n", "store/bad.py:1 imports operators"),
        ("quantumflow", "def f():\n    from cli.main import app\n", "quantumflow/bad.py:2 imports cli"),
        ("operators", "import models.nets\n", "operators/bad.py:1 imports models"),
    ],
)
def test_the_check_catches_an_upward_import(tmp_path, package, source, expected):
    for name in LAYERS:
        (tmp_path / name).mkdir()
    (tmp_path / package / "bad.py").write_text(source)
    assert upward_imports(tmp_path) == [expected]


def test_the_check_lets_downward_imports_through(tmp_path):
    for name in LAYERS:
        (tmp_path / name).mkdir()
    (tmp_path / "api" / "ok.py").write_text("from store import open_store\nimport numpy\nfrom . import sibling\n")
    assert upward_imports(tmp_path) == []


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(name: str, path: Path, modules: set[str]) -> set[str]:
    """The project's modules that the file imports, at any depth (under ``TYPE_CHECKING`` too: a
    cycle hidden from the interpreter is still two modules that cannot be understood apart)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([module] if module else [])])
            candidates = [f"{module}.{alias.name}" for alias in node.names] + [module]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in modules:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                found.add(candidate)
                break
    return found


def import_cycle(root: Path = ROOT) -> list[str]:
    """One cycle of modules importing each other, as [a, b, ..., a], or [] if there is none."""
    paths = {module_name(root, path): path for package in LAYERS for path in (root / package).rglob("*.py")}
    graph = {name: imported_modules(name, path, set(paths)) for name, path in paths.items()}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        return error.args[1]
    return []


def test_no_module_is_part_of_an_import_cycle():
    assert import_cycle() == []


def test_the_cycle_check_sees_through_type_checking(tmp_path):
    for name in LAYERS:
        (tmp_path / name).mkdir()
    (tmp_path / "simulator" / "__init__.py").write_text("from simulator.engine import run\n")
    (tmp_path / "simulator" / "engine.py").write_text("from .feed import Feed\n")
    (tmp_path / "simulator" / "feed.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from simulator.engine import Session\n"
    )
    assert sorted(import_cycle(tmp_path)[:-1]) == ["simulator.engine", "simulator.feed"]
    (tmp_path / "simulator" / "feed.py").write_text("from simulator import session\n")
    (tmp_path / "simulator" / "session.py").write_text("import numpy\n")
    assert import_cycle(tmp_path) == []
