"""No import cycles in `app`, counting the imports made only for type checking and inside functions.

import-linter's `acyclic_siblings` contract judges whole packages (`app.core` and `app.core.socket`
import each other's modules without any module cycle), so the check is made here, module by module.
"""

from __future__ import annotations

import grimp

TYPE_ONLY_CYCLES = {frozenset({"app.core.socket.engine.polling", "app.core.socket.engine.transport"})}
"""Cycles through imports made for type checking only: the long-polling POST handling names the
engine and socket types of the transport that calls it."""


def cycles(graph: grimp.ImportGraph) -> set[frozenset[str]]:
    """The modules of every strongly connected component larger than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: set[frozenset[str]] = set()

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = {stack.pop()}
            while module not in component:
                component.add(stack.pop())
            if len(component) > 1:
                found.add(frozenset(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_module_of_app_is_part_of_an_import_cycle() -> None:
    assert cycles(grimp.build_graph("app", cache_dir=None)) <= TYPE_ONLY_CYCLES


def test_the_remaining_cycles_are_for_type_checking_only() -> None:
    assert not cycles(grimp.build_graph("app", cache_dir=None, exclude_type_checking_imports=True))


def test_a_cycle_is_found() -> None:
    graph = grimp.ImportGraph()
    for importer, imported in (("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")):
        graph.add_import(importer=importer, imported=imported)
    assert cycles(graph) == {frozenset({"a", "b", "c"})}
