"""The import contract (docs/architecture.md, "Package map"): product packages never import the tooling,
inference and streams never import each other, evaluators import no Kafka or ClickHouse client, and no module
imports itself back through a cycle.

import-linter would be the usual tool, but its graph builder (grimp) walks one directory per top-level package,
and llmwatch's sub-packages live in top-level folders of their own (pyproject's package-dir: `llmwatch.streams` is
`streams/`). This test builds the same graph from pyproject's mapping with `ast`: every import statement counts,
including those inside functions and under TYPE_CHECKING, as import-linter counts them.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

TOOLING = ("llmwatch.bench", "llmwatch.harness", "llmwatch.sim", "llmwatch.demo")
#: the entry point wires product and tooling together; it is the only package allowed both
ENTRY = ("llmwatch.cli",)
CLIENTS = ("aiokafka", "kafka", "faust", "clickhouse_connect", "chdb", "llmwatch.db", "llmwatch.local")


@cache
def modules() -> dict[str, Path]:
    """Module name → file, from pyproject's packages and package-dir."""
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs: dict[str, str] = setup["package-dir"]
    out: dict[str, Path] = {}
    for package in setup["packages"]:
        parts = package.split(".")
        for i in range(len(parts), 0, -1):
            prefix = ".".join(parts[:i])
            if prefix in dirs:
                folder = ROOT / dirs[prefix] / Path(*parts[i:])
                break
        else:
            folder = ROOT / Path(*parts)
        for file in folder.glob("*.py"):
            out[package if file.name == "__init__.py" else f"{package}.{file.stem}"] = file
    return out


def _imported(name: str, file: Path) -> set[str]:
    """Every module name an import statement of `file` names (relative imports resolved)."""
    package = name if file.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.add(target)
            out.update(f"{target}.{a.name}" for a in node.names)  # `from pkg import module`
    return out


@cache
def graph() -> dict[str, frozenset[str]]:
    """Module → the names it imports: our modules (resolved to the nearest one that exists) and externals."""
    mods = modules()
    out: dict[str, frozenset[str]] = {}
    for name, file in mods.items():
        targets = set()
        for imported in _imported(name, file):
            if not imported.startswith("llmwatch"):
                targets.add(imported)
                continue
            while imported and imported not in mods:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        out[name] = frozenset(targets)
    return out


def _inside(module: str, packages: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _violations(sources: Iterable[str], forbidden: Iterable[str]) -> list[str]:
    g, forbidden = graph(), tuple(forbidden)
    return sorted(f"{m} imports {t}" for m in g if _inside(m, sources) for t in g[m] if _inside(t, forbidden))


def test_the_graph_sees_every_package() -> None:
    names = set(modules())
    for package in ("llmwatch.streams", "llmwatch.inference", "llmwatch.evaluators", "llmwatch.schemas", *TOOLING):
        assert any(_inside(n, [package]) for n in names), package
    assert "llmwatch.streams.windowing" in graph()["llmwatch.streams.window_agent"]  # relative import resolved


def test_product_never_imports_the_tooling() -> None:
    g = graph()
    product = [m for m in g if not _inside(m, (*TOOLING, *ENTRY))]
    assert "llmwatch.settings" in product and "llmwatch.streams.worker" in product
    assert sorted(f"{m} imports {t}" for m in product for t in g[m] if _inside(t, TOOLING)) == []


def test_inference_and_streams_never_import_each_other() -> None:
    assert _violations(["llmwatch.inference"], ["llmwatch.streams"]) == []
    assert _violations(["llmwatch.streams"], ["llmwatch.inference"]) == []


def test_evaluators_import_no_kafka_or_clickhouse_client() -> None:
    assert _violations(["llmwatch.evaluators"], (*CLIENTS, "llmwatch.streams", "llmwatch.inference")) == []


def test_schemas_sit_at_the_bottom() -> None:
    above = ("llmwatch.evaluators", "llmwatch.inference", "llmwatch.streams", "llmwatch.db", "llmwatch.cli")
    assert _violations(["llmwatch.schemas"], (*above, *CLIENTS)) == []


def test_no_import_cycles() -> None:
    g = {m: {t for t in ts if t in modules()} for m, ts in graph().items()}
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(g):
        if v not in index:
            visit(v)
    assert cycles == []


@pytest.mark.parametrize(
    ("sources", "forbidden", "source"),
    [
        (["llmwatch.evaluators"], ["aiokafka"], "import aiokafka\n"),
        (["llmwatch.streams"], ["llmwatch.harness"], "def f():\n    from llmwatch.harness import wait_for\n"),
    ],
)
def test_the_checker_sees_a_violation(
    sources: list[str], forbidden: list[str], source: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A planted import (a lazy one too) is reported: the contract would fail on a real one."""
    planted = tmp_path / "planted.py"
    planted.write_text(source)
    name = f"{sources[0]}.planted"
    fake = {**modules(), name: planted}
    graph.cache_clear()
    monkeypatch.setattr(sys.modules[__name__], "modules", lambda: fake)
    try:
        assert any(v.startswith(name) for v in _violations(sources, forbidden))
    finally:
        graph.cache_clear()
