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
ABOVE = ("genlab.viz", "matplotlib", "genlab.reports", "genlab.cli", "genlab.lecture",
         "genlab.explore", "genlab.api")
# the README's architecture, top to bottom: a module imports only from its own row and the rows below
ROWS = (
    ("cli", "__main__"),
    ("lecture", "explore"),
    ("api",),
    ("reports",),
    ("metrics", "latent", "viz"),
    ("training",),
    ("models",),
    ("nn", "distributions", "attacks"),
    ("data",),
    ("errors", "registry", "config", "checkpoint", "runtime", "grids", "batching", "precision", "_version"),
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


def test_matplotlib_is_imported_only_by_the_reports_viz_and_the_lecture():
    graph = import_graph()
    allowed = ("genlab.reports", "genlab.viz", "genlab.lecture")
    wrong = [f"{m} imports {t} (line {line})" for m, edges in sorted(graph.items()) if not _within(m, allowed)
             for t, line in sorted(edges.items()) if _within(t, ("matplotlib",))]
    assert not wrong, "matplotlib outside reports/, viz.py and lecture/:\n" + "\n".join(wrong)
    assert "matplotlib" in graph["genlab.viz"]  # the walk does see it where it is


def _figure_registries(path: Path) -> list[str]:
    """Module-level names that look like a figure registry: a dict/Registry bound to a name with
    FIGURE in it, or a ``Registry("... figure ...")``, or a ``@figure``-style decorator factory."""
    found = []
    for node in ast.parse(path.read_text(), str(path)).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        value = getattr(node, "value", None)
        for target in targets:
            if isinstance(target, ast.Name) and "FIGURE" in target.id.upper() and isinstance(value, (ast.Dict, ast.Call)):
                found.append(target.id)
        if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "Registry":
            label = " ".join(a.value for a in value.args if isinstance(a, ast.Constant) and isinstance(a.value, str))
            if "figure" in label and not any(isinstance(t, ast.Name) and "FIGURE" in t.id.upper() for t in targets):
                found.append(label)
    return found


def test_there_is_one_figure_registry_the_lectures(tmp_path):
    registries = {name: found for name, (path, _) in _modules(PACKAGE).items() if (found := _figure_registries(path))}
    assert registries == {"genlab.lecture.core": ["FIGURES"]}, registries
    assert "genlab.figures" not in _modules(PACKAGE)
    # the detector does see a second registry of either form
    probe = tmp_path / "probe.py"
    probe.write_text("FIGURES: dict = {}\nPLOTS = Registry('extra figure')\n")
    assert _figure_registries(probe) == ["FIGURES", "extra figure"]


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


# What a model can do is asked of genlab.latent.protocols (has / require), never probed with hasattr at
# the call site. Feature tests on things that are not models stay, each listed with its exact call.
CAPABILITY_MODULE = "genlab/latent/protocols.py"
HASATTR_EXEMPT_DIRS: tuple[str, ...] = ()
HASATTR_FEATURE_TESTS = {
    ("genlab/runtime.py", 'hasattr(torch.Tensor, "_use_count")'),  # a private torch counter
    ("genlab/data/imageio.py", 'hasattr(os, "sched_getaffinity")'),  # not on macOS
    ("genlab/data/store.py", 'hasattr(mmap, "MADV_RANDOM")'),  # not on every platform
    ("genlab/data/store.py", "hasattr(os, 'getuid')"),  # not on Windows
    ("genlab/metrics/fid.py", 'hasattr(x, "detach")'),  # a tensor or an array, not a model
    ("genlab/lecture/likelihood.py", 'hasattr(layer, "reset_parameters")'),  # torch layers that own weights
}


def hasattr_calls(package: Path = PACKAGE) -> list[tuple[str, str, int]]:
    """(file relative to src/, the call's source, line) for every ``hasattr(...)`` call under ``package``."""
    found = []
    for path in sorted(package.rglob("*.py")):
        text = path.read_text()
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "hasattr":
                found.append((path.relative_to(package.parent).as_posix(), ast.get_source_segment(text, node) or "", node.lineno))
    return found


def test_capabilities_are_checked_in_the_protocol_module_only():
    calls = hasattr_calls()
    assert ("genlab/runtime.py", 'hasattr(torch.Tensor, "_use_count")') in {(f, c) for f, c, _ in calls}  # the walk sees them
    wrong = [f"{f}:{line}: {call}" for f, call, line in calls
             if f != CAPABILITY_MODULE and not f.startswith(HASATTR_EXEMPT_DIRS) and (f, call) not in HASATTR_FEATURE_TESTS]
    assert not wrong, ("capability checks outside genlab.latent.protocols (use has(model, ...) / require(model, ...)):\n"
                       + "\n".join(wrong))


def test_the_reading_order_fits_in_one_sitting():
    """STYLE.md's reading order (the contract, one family, the loop) stays under 800 lines together."""
    files = [PACKAGE / "models" / "base.py", PACKAGE / "models" / "vae.py", PACKAGE / "training" / "trainer.py"]
    lines = {f.name: len(f.read_text().splitlines()) for f in files}
    assert sum(lines.values()) < 800, lines
