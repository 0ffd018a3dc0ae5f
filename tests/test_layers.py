"""The layers point down: no import cycle between modules of genlab, and nothing below the reports
imports plotting, reports, the CLI, the lecture or the explorer.

Every ``import`` statement of every module is read with ``ast`` -- at module level and inside
functions alike, since a function-level import that dodges a cycle is still a cycle."""
from __future__ import annotations

import ast
from pathlib import Path

import genlab

PACKAGE = Path(genlab.__file__).parent
# modules that must stay pure: models, networks, output distributions, data, the training loop
LOWER = ("genlab.models", "genlab.nn", "genlab.distributions", "genlab.data", "genlab.training")
# what they must never import: plotting, family reports, the CLI, the lecture, the explorer
ABOVE = ("genlab.viz", "genlab.figures", "matplotlib", "genlab.reports", "genlab.cli", "genlab.lecture",
         "genlab.explore", "genlab.api")
# the README's architecture, top to bottom: a module imports only from its own row and the rows below
ROWS = (
    ("cli", "__main__", "devtools"),
    ("lecture", "explore", "figures"),
    ("api",),
    ("reports",),
    ("metrics", "latent", "viz"),
    ("training",),
    ("models",),
    ("nn", "distributions", "attacks"),
    ("data",),
    ("errors", "registry", "config", "checkpoint", "runtime", "grids", "_version"),
)


def _modules(package: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package) for every module under ``package``."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def import_graph(package: Path = PACKAGE) -> dict[str, dict[str, int]]:
    """Module -> {imported module: line} for every import, module level or inside a function. An
    imported name that is itself a module (``from .. import checkpoint``) counts as that module only
    (a package's ``__init__`` runs before any of its modules, so it is no edge of its own)."""
    modules = _modules(package)
    graph: dict[str, dict[str, int]] = {}
    for name, (path, is_package) in modules.items():
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    edges.setdefault(alias.name, node.lineno)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                submodules = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules]
                for submodule in submodules:
                    edges.setdefault(submodule, node.lineno)
                if len(submodules) < len(node.names):  # a name defined in ``target`` itself
                    edges.setdefault(target, node.lineno)
        edges.pop(name, None)
        graph[name] = edges
    return graph


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle (as a closed path) per strongly connected group of modules (Tarjan)."""
    internal = {m: [t for t in edges if t in graph] for m, edges in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in internal[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(internal):
        if v not in index:
            visit(v)
    cycles = []
    for group in groups:  # a path from the group's first module back to itself, for the message
        start = min(group)
        path, seen = [start], {start}
        while True:
            nxt = next(t for t in sorted(internal[path[-1]]) if t in group and (t == start or t not in seen))
            path.append(nxt)
            if nxt == start:
                break
            seen.add(nxt)
        cycles.append(path)
    return cycles


def test_the_walk_sees_module_and_function_level_imports():
    graph = import_graph()
    assert "genlab.checkpoint" in graph["genlab.models.base"]  # module level, relative
    assert "genlab.viz" in graph["genlab.lecture.core"]  # inside a function
    assert "genlab.reports.mdn" in graph["genlab.reports"] or "genlab.reports.autoencoder" in graph["genlab.reports"]
    assert find_cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b": 1}, "b": {}}) == []


def test_no_import_cycle_in_genlab():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_models_nn_distributions_data_and_training_import_nothing_above_them():
    graph = import_graph()
    wrong = [f"{m} imports {t} (line {line})" for m, edges in sorted(graph.items()) if _within(m, LOWER)
             for t, line in sorted(edges.items()) if _within(t, ABOVE)]
    assert not wrong, "\n".join(wrong)


def test_every_family_evaluator_and_reporter_is_registered_in_reports():
    outside = sorted(name for name, (path, _) in _modules(PACKAGE).items()
                     if not _within(name, ("genlab.reports", "genlab.registry"))
                     and any(word in path.read_text() for word in ("register_evaluator", "register_reporter")))
    assert not outside, f"evaluators or reporters registered outside genlab.reports: {outside}"


def test_every_import_points_down_the_readmes_rows():
    rank = {part: i for i, row in enumerate(ROWS) for part in row}
    graph = import_graph()
    part = lambda module: module.split(".")[1] if "." in module else None  # noqa: E731  (None: the package itself)
    unplaced = sorted({part(m) for m in graph} - set(rank) - {None})
    assert not unplaced, f"modules in no row of the architecture (add them to ROWS and the README): {unplaced}"
    upward = [f"{m} imports {t} (line {line})" for m, edges in sorted(graph.items()) for t, line in sorted(edges.items())
              if t in graph and part(m) and part(t) and rank[part(t)] < rank[part(m)]]
    assert not upward, "imports pointing up:\n" + "\n".join(upward)


def test_the_reading_order_fits_in_one_sitting():
    """STYLE.md's reading order (the contract, one family, the loop) stays under 800 lines together."""
    files = [PACKAGE / "models" / "base.py", PACKAGE / "models" / "vae.py", PACKAGE / "training" / "trainer.py"]
    lines = {f.name: len(f.read_text().splitlines()) for f in files}
    assert sum(lines.values()) < 800, lines
