"""The import-layering gate: imports point down the layers only, and no module of ``shared`` is in an import cycle.

The contracts live in pyproject.toml (``[tool.importlinter]``); ``lint-imports`` prints the same report by hand.
A failure here names the import that points up (or closes a cycle): move the shared piece down a layer (a base
module, a port in the lower package) or hand the collaborator in from ``shared.runtime`` instead of importing it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# TEMPORARY: the package's __init__ re-exports from its service, which imports the package back; the containment
# helper's split removes it. Nothing may be added here.
KNOWN_CYCLES: list[set[str]] = []


def test_every_import_linter_contract_is_kept():
    run = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; lint_imports_command()"]
        + ["--no-cache", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


def _module_graph() -> dict[str, set[str]]:
    import grimp

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph("shared", "functions", cache_dir=None)
    modules = {m for m in graph.modules if m.split(".")[0] in ("shared", "functions")}
    return {m: {x for x in graph.find_modules_directly_imported_by(m) if x in modules} for m in modules}


def _strongly_connected(edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative: the groups of modules that import each other (directly or not)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                groups.append(group)
    return groups


def test_no_module_of_shared_or_functions_is_in_an_import_cycle():
    cycles = [g for g in _strongly_connected(_module_graph()) if len(g) > 1]
    unexpected = [sorted(g) for g in cycles if g not in KNOWN_CYCLES]
    assert not unexpected, f"import cycles: {unexpected}"


def test_the_cycle_finder_finds_a_cycle():
    groups = _strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    assert {"a", "b", "c"} in groups and {"d"} in groups


def test_nothing_imports_function_app():
    # function_app.py is a plain module (grimp roots graphs at packages only): it is the top of the layers.
    offenders = []
    for path in sorted([*ROOT.glob("shared/**/*.py"), *ROOT.glob("functions/**/*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n == "function_app" or n.startswith("function_app.") for n in names):
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders
