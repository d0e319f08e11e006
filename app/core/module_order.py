"""Put modules in the order their providers need one another, or say in one line why not.

A module provides the types its `providers` build and requires the types in `requires`. Each
module comes after the modules that provide what it requires, whatever order it was listed in, so
its providers may take theirs from the context when they are built, and its start-up hooks run
after theirs (its shut-down hooks before theirs). Otherwise modules keep the order they were given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.core.module import Module, ModuleError


def order_modules(modules: Sequence[Module], core_requires: Sequence[type[Any]] = ()) -> tuple[Module, ...]:
    """`modules` with each after its providers; `core_requires` are the types core itself needs."""
    _refuse_twice_named(modules)
    providers = _providers(modules)
    for needed in core_requires:
        if needed not in providers:
            raise ModuleError(f"Parley's core needs {_name(needed)}, which no module provides")
    ordered: list[Module] = []
    placed: set[str] = set()
    for module in modules:
        _place(module, providers, ordered, placed, path=())
    return tuple(ordered)


def _refuse_twice_named(modules: Sequence[Module]) -> None:
    seen: set[str] = set()
    for module in modules:
        if module.name in seen:
            raise ModuleError(f"module {module.name!r} is listed twice")
        seen.add(module.name)


def _providers(modules: Sequence[Module]) -> dict[type[Any], Module]:
    providers: dict[type[Any], Module] = {}
    for module in modules:
        for provided in module.provides:
            if provided in providers:
                raise ModuleError(
                    f"{_name(provided)} is provided by both module {providers[provided].name!r} "
                    f"and module {module.name!r}"
                )
            providers[provided] = module
    return providers


def _place(
    module: Module,
    providers: Mapping[type[Any], Module],
    ordered: list[Module],
    placed: set[str],
    path: tuple[Module, ...],
) -> None:
    """Depth first: what `module` requires is placed before it; `path` is the chain being placed."""
    if module.name in placed:
        return
    names = [step.name for step in path]
    if module.name in names:
        chain = " -> ".join([*names[names.index(module.name) :], module.name])
        raise ModuleError(f"modules require each other in a cycle: {chain}")
    for needed in module.requires:
        provider = providers.get(needed)
        if provider is None:
            raise ModuleError(f"module {module.name!r} requires {_name(needed)}, which no module provides")
        if provider is not module:
            _place(provider, providers, ordered, placed, (*path, module))
    placed.add(module.name)
    ordered.append(module)


def _name(provided: type[Any]) -> str:
    return f"{provided.__module__}.{provided.__qualname__}"
