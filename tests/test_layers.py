"""The package's layers: every import points down, none goes round in a circle.

Order (DESIGN.md, STYLE.md): errors < fileio/quiet/progress < native, targets, remote < data, manifest < models
< runtime, training < quant, bench, predict < export, camera < pipeline, doctor < render, cli_support < cli. Units
on one layer do not import each other. Three checks:

* statically, every ``import`` in the package (module level *and* inside functions: a lazy import
  is still a dependency) against the order;
* statically, no circle among the imports that run at import time (module level);
* dynamically, each unit imported alone in a fresh interpreter loads no unit above it or beside it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "edge_fgic"

LAYERS = [
    {"<root>", "errors"},                                # edge_fgic/__init__ (the version) and UserError
    {"fileio", "quiet", "progress", "utils", "timing"},  # stdlib-level helpers
    {"native", "targets", "remote"},                     # child processes; the target table; devices over ssh
    {"data", "manifest", "metrics"},
    {"models"},
    {"runtime", "training"},
    {"quant", "bench", "predict"},
    {"export", "camera"},
    {"pipeline", "doctor"},
    {"render", "cli_support"},  # what the CLI prints and the flag parsing it shares (cli.py stays thin)
    {"cli"},
    {"__main__"},
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<root>"


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported edge_fgic module, line, at module level) for every import in the file."""
    mod = _module(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    # imports nested in module-level if/try blocks also run at import time
    for n in tree.body:
        if isinstance(n, (ast.If, ast.Try)):
            top |= {id(c) for c in ast.walk(n)}
    out = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from pkg import module` names a module; `from module import name` names the module
            names = [f"{target}.{a.name}" if _is_module(f"{target}.{a.name}") else target for a in node.names]
        for name in names:
            if name == "edge_fgic" or name.startswith("edge_fgic."):
                out.append((name, node.lineno, id(node) in top))
    return out


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:]) if "." in name else Path()
    return (PKG / rel).with_suffix(".py").is_file() or (PKG / rel / "__init__.py").is_file()


FILES = sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_unit_has_a_layer():
    units = {_unit(_module(p)) for p in FILES}
    assert units <= set(LAYER), f"give these a layer in tests/test_layers.py: {sorted(units - set(LAYER))}"


def test_every_import_points_down():
    wrong = []
    for path in FILES:
        here = _unit(_module(path))
        for target, line, _ in _imports(path):
            there = _unit(target)
            if there == here:
                continue
            if LAYER[there] >= LAYER[here]:
                kind = "beside" if LAYER[there] == LAYER[here] else "above"
                wrong.append(f"{path.relative_to(PKG.parent)}:{line}: {here} imports {target} ({kind} it)")
    assert not wrong, "imports that do not point down:\n" + "\n".join(wrong)


def test_no_import_circle_at_import_time():
    graph: dict[str, set[str]] = {}
    for path in FILES:
        mod = _module(path)
        graph.setdefault(mod, set())
        for target, _, at_top in _imports(path):
            if at_top and target != mod:
                graph[mod].add(target)
                # importing a.b.c runs a/__init__ and a/b/__init__ first, unless the importer is inside them
                # (then they are already being initialised: how a package imports its own modules)
                parts = target.split(".")
                graph[mod] |= {p for p in (".".join(parts[:i]) for i in range(2, len(parts)))
                               if p != mod and not mod.startswith(p + ".")}
    cycles = _cycles(graph)
    assert not cycles, "import circles at import time:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checks_can_fail():
    """The checkers see an upward import, a sideways one and a circle (they are not vacuous)."""
    assert LAYER["models"] < LAYER["quant"] and LAYER["runtime"] == LAYER["training"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert not _cycles({"a": {"b"}, "b": set()})
    assert _unit("edge_fgic.quant.nncf_quant") == "quant" and _unit("edge_fgic") == "<root>"
    assert _is_module("edge_fgic.models.quantized") and not _is_module("edge_fgic.models.quantized.nncf")


_PROBE = ("import importlib, json, sys\nfor m in sys.argv[1:]: importlib.import_module(m)\n"
          "print(json.dumps(sorted({m.split('.')[1] if m.count('.') else '<root>' "
          "for m in sys.modules if m == 'edge_fgic' or m.startswith('edge_fgic.')})))")


def _loaded_by(unit: str) -> list[str]:
    """The units loaded by importing every module of ``unit`` (its package and all its modules) in a fresh
    interpreter. ``edge_fgic/__init__`` is always loaded (it is every module's parent)."""
    modules = [m for m in map(_module, FILES) if _unit(m) == unit and not m.endswith("__main__")]
    proc = subprocess.run([sys.executable, "-c", _PROBE, *modules], capture_output=True, text=True, timeout=300,
                          cwd=PKG.parent)
    assert proc.returncode == 0, f"importing {unit} failed in a fresh interpreter:\n{proc.stderr[-2000:]}"
    return [u for u in json.loads(proc.stdout.strip().splitlines()[-1]) if u != "<root>"]


UNITS = sorted(u for u in LAYER if u not in ("__main__", "cli") and ((PKG / u).is_dir() or (PKG / f"{u}.py").is_file()
                                                                   or u == "<root>"))


@pytest.fixture(scope="module")
def loaded() -> dict[str, list[str]]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(UNITS, pool.map(_loaded_by, UNITS)))


@pytest.mark.slow  # a fresh interpreter per unit, torch and the runtimes included: ~25 s on 2 cores
@pytest.mark.parametrize("unit", UNITS)
def test_a_unit_imported_alone_loads_nothing_above_it(unit, loaded):
    above = [u for u in loaded[unit] if u != unit and LAYER.get(u, 99) >= LAYER[unit]]
    assert not above, f"importing {unit} alone loads {above} (same layer or above)"
