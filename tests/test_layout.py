"""The package layout's rules, read from the source (AST): imports run downward, no cycles,
curated package faces, unique module names."""

from __future__ import annotations

import ast
import importlib
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for d in ("cropassets", "tiler") for p in sorted((ROOT / d).rglob("*.py"))]

# What each part may not import (prefix match on the imported module name).
FORBIDDEN = {
    "cropassets.core": ("cropassets.ml", "cropassets.assets", "cropassets.resources",
                        "cropassets.partitions", "cropassets.sensors", "cropassets.world",
                        "cropassets.definitions", "dagster", "tiler"),
    "cropassets.ml": ("cropassets.assets", "cropassets.resources", "cropassets.partitions",
                      "cropassets.sensors", "cropassets.definitions", "dagster", "tiler"),
    "cropassets.world": ("cropassets.core", "cropassets.ml", "cropassets.assets",
                         "cropassets.resources", "dagster", "tiler"),
    "tiler": ("cropassets.ml", "cropassets.assets", "cropassets.resources",
              "cropassets.partitions", "dagster"),
}
CORE_PACKAGES = ("stac", "cube", "timeseries", "publish", "reference", "quality", "objstore")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module an import statement in ``path`` names (top level and inside functions)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


MODULES = {_module_name(p): p for p in SOURCES}
GRAPH = {m: {i for i in _imports(p) if i in MODULES and i != m} for m, p in MODULES.items()}


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_imports_run_downward(part):
    bad = sorted(f"{m} imports {i}" for m, p in MODULES.items() if _matches(m, part)
                 for i in _imports(p) if any(_matches(i, f) for f in FORBIDDEN[part]))
    assert not bad, "\n".join(bad)


def test_no_import_cycle():
    """No strongly connected component of more than one module (Tarjan on the import graph).

    A package's ``__init__`` re-exporting its own modules is not an edge back: a submodule
    importing a sibling does not import the package face.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if _matches(v, w):  # a module naming its own package face (implicit parent)
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not cycles, cycles


@pytest.mark.parametrize("package", CORE_PACKAGES)
def test_core_packages_have_a_curated_face(package):
    module = importlib.import_module(f"cropassets.core.{package}")
    exported = getattr(module, "__all__", None)
    assert exported, f"cropassets.core.{package} has no __all__"
    assert len(exported) == len(set(exported))
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"cropassets.core.{package}.__all__ names {missing}, not defined"
    assert all(not n.startswith("_") for n in exported)
    assert module.__doc__ and module.__doc__.strip()


def test_core_root_holds_only_shared_basics():
    """The core's root keeps a handful of shared modules; everything else lives in packages."""
    root = sorted(p.stem for p in (ROOT / "cropassets/core").glob("*.py") if p.stem != "__init__")
    packages = sorted(p.name for p in (ROOT / "cropassets/core").iterdir()
                      if (p / "__init__.py").exists())
    assert set(CORE_PACKAGES) <= set(packages)
    assert len(root) <= 10, root


def test_module_names_are_unique():
    names = Counter(p.name for p in SOURCES + sorted((ROOT / "bench").glob("*.py"))
                    if p.name not in ("__init__.py", "__main__.py"))
    assert not [n for n, c in names.items() if c > 1], sorted(n for n, c in names.items() if c > 1)


def test_no_module_over_500_lines():
    long = {str(p.relative_to(ROOT)): n for p in SOURCES
            if (n := len(p.read_text().splitlines())) > 500}
    assert not long, long


def test_asset_modules_do_not_import_each_other():
    """Asset modules share only the wiring (partitions, resources) and the private helpers
    ``_steps`` / ``_ui``; lineage lives in ``partitions.py``, paths in ``DataRoot``."""
    asset_modules = {m for m in MODULES if m.startswith("cropassets.assets.")
                     and not m.rsplit(".", 1)[1].startswith("_")}
    bad = sorted(f"{m} imports {i}" for m in asset_modules for i in GRAPH[m] if i in asset_modules)
    assert len(asset_modules) >= 5
    assert not bad, bad


def test_every_partition_definition_and_mapping_is_in_partitions_py():
    built = ("PartitionsDefinition(", "PartitionMapping(", "PartitionMapping[")
    bad = sorted(str(p.relative_to(ROOT)) for p in SOURCES
                 if p.name != "partitions.py" and any(b in p.read_text() for b in built))
    assert not bad, bad
