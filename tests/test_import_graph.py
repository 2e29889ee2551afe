"""The module graph of threadline has no cycle, and the layers of DESIGN.md hold.

Wiring is by constructor (DESIGN.md, "Seams"): a component gets narrow protocols,
never the runtime, so nothing the runtime builds imports the runtime back. A cycle
hidden behind `if TYPE_CHECKING:` or an import inside a function is still a cycle
(the modules still know each other), so every import statement counts, wherever it
is written. `from package import name` imports the module `package.name` when that
is a module, else `package`; `importlib.import_module("threadline....")` with a
literal name counts as an import too.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("channels", "domain", "projections", "triggers", "services")

# Which layers each layer may import (its own always): DESIGN.md's dependency rule.
ALLOWED: dict[str, frozenset[str]] = {
    "domain": frozenset(),
    "channels": frozenset({"domain"}),
    "projections": frozenset({"domain"}),
    "triggers": frozenset({"domain", "projections"}),
    "services": frozenset({"domain", "channels", "projections", "triggers"}),
}


def _module_files() -> dict[str, Path]:
    """Every module of the five root folders by its import name."""
    modules: dict[str, Path] = {}
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).with_suffix("")
            parts = list(relative.parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(["threadline", *parts])] = path
    return modules


MODULES = _module_files()


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _imported(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """(module, line) for each threadline module that `name` imports, anywhere in its file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = _package_of(name, path).split(".")
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield (candidate if candidate in MODULES else base), node.lineno
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.args[0].value, node.lineno


def _graph() -> dict[str, dict[str, int]]:
    """module -> {imported threadline module: first line importing it}."""
    graph: dict[str, dict[str, int]] = {}
    for name, path in MODULES.items():
        edges: dict[str, int] = {}
        for target, line in _imported(name, path):
            if target in MODULES and target != name:
                edges.setdefault(target, line)
        graph[name] = edges
    return graph


GRAPH = _graph()


def _strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's components with more than one module (iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
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
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
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
    return found


def _a_cycle(graph: dict[str, dict[str, int]], component: list[str]) -> list[str]:
    """One concrete cycle through the first module of a component (breadth-first)."""
    members = set(component)
    start = component[0]
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node]):
                if child not in members:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in came_from:
                    came_from[child] = node
                    following.append(child)
        frontier = following
    return component


def _describe(graph: dict[str, dict[str, int]], cycle: list[str]) -> str:
    steps = [
        f"  {module} (line {graph[module][following]}) -> {following}"
        for module, following in itertools.pairwise(cycle)
    ]
    return "\n".join(steps)


def test_the_walk_sees_the_whole_package() -> None:
    assert "threadline.services.runtime" in MODULES
    assert "threadline.domain.commands.application" in MODULES
    # an in-function import and a `TYPE_CHECKING` one are edges like any other
    assert len(MODULES) > 100


def test_no_module_imports_itself_back() -> None:
    components = _strongly_connected(GRAPH)
    report = [
        f"cycle among {len(component)} modules, e.g.:\n"
        + _describe(GRAPH, _a_cycle(GRAPH, component))
        + "\n  (all of them: "
        + ", ".join(component)
        + ")"
        for component in components
    ]
    assert not report, "import cycles:\n" + "\n".join(report)


def _layer(module: str) -> str:
    return module.split(".")[1]


def test_layers_import_only_the_layers_below() -> None:
    wrong = [
        f"{module} (line {line}) imports {target}"
        for module, edges in sorted(GRAPH.items())
        for target, line in sorted(edges.items())
        if _layer(target) != _layer(module) and _layer(target) not in ALLOWED[_layer(module)]
    ]
    assert not wrong, "imports against the layering of DESIGN.md:\n" + "\n".join(wrong)


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The guard itself: a cycle hidden in a function or behind TYPE_CHECKING is found."""
    graph = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}}
    [component] = _strongly_connected(graph)
    assert component == ["a", "b", "c"]
    assert _a_cycle(graph, component) == ["a", "b", "c", "a"]


def test_every_kind_of_import_is_an_edge(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from threadline.services.runtime import Runtime\n"
        "def later():\n"
        "    import threadline.services.delivery\n"
        "    from threadline.services import notifier\n"
        "    importlib.import_module('threadline.services.webhooks')\n"
    )
    found = {target for target, _ in _imported("threadline.services.sample", source)}
    assert {
        "threadline.services.runtime",
        "threadline.services.delivery",
        "threadline.services.notifier",
        "threadline.services.webhooks",
    } <= found


def test_no_module_imports_another_modules_private_names() -> None:
    """A leading underscore means "this module's own": the web app calls service modules
    (public names), never another route module's private helpers."""
    private = [
        f"{name} (line {node.lineno}) imports {node.module}.{alias.name}"
        for name, path in sorted(MODULES.items())
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path)))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("threadline.")
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert not private, "private names imported from other modules:\n" + "\n".join(private)


def test_the_web_app_does_not_import_the_api_routes() -> None:
    """Shared behaviour lives in service modules that both the API and the web app call."""
    crossing = [
        f"{module} (line {line}) imports {target}"
        for module, edges in sorted(GRAPH.items())
        if module.startswith("threadline.services.web.")
        for target, line in sorted(edges.items())
        if target.startswith("threadline.services.api.routes_")
    ]
    assert not crossing, "web modules importing API route modules:\n" + "\n".join(crossing)
