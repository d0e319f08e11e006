"""Find the application's own modules named by `PARLEY_MODULES`.

Each name is either an entry point of the `parley.modules` group, as an installed package declares
it (`game`), or an import path: `pkg.mod:attr` names the module object, `pkg.mod` a Python module
holding exactly one. Installing a package enables nothing by itself: a server serves what its
settings name, so one environment can hold modules that only some servers use.
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Sequence
from importlib.metadata import EntryPoint, entry_points

from app.core.module import Module, ModuleError

ENTRY_POINT_GROUP = "parley.modules"
SETTING = "PARLEY_MODULES"


def load_modules(names: Sequence[str]) -> tuple[Module, ...]:
    """The modules `names` designate, in that order; a ModuleError names the first that fails."""
    if not names:
        return ()  # reading every installed distribution's entry points costs start-up time
    installed = {point.name: point for point in entry_points(group=ENTRY_POINT_GROUP)}
    return tuple(_load(name, installed) for name in names)


def _load(name: str, installed: dict[str, EntryPoint]) -> Module:
    if name in installed:
        try:
            found = installed[name].load()
        except (ImportError, AttributeError) as exc:
            raise ModuleError(f"{SETTING}: entry point {name!r} cannot be loaded: {exc}") from None
        return _module_of(name, found)
    module_path, _, attribute = name.partition(":")
    try:
        python_module = importlib.import_module(module_path)
    except ImportError as exc:
        known = ", ".join(sorted(installed)) or "none"
        raise ModuleError(
            f"{SETTING}: {name!r} is no installed entry point of {ENTRY_POINT_GROUP} (installed: {known}) "
            f"and cannot be imported: {exc}"
        ) from None
    if not attribute:
        return _only_module_in(name, python_module)
    target: object = python_module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ModuleError(f"{SETTING}: {module_path} has no attribute {attribute!r}")
        target = getattr(target, part)
    return _module_of(name, target)


def _only_module_in(name: str, python_module: types.ModuleType) -> Module:
    found = [value for value in vars(python_module).values() if isinstance(value, Module)]
    if len(found) != 1:
        raise ModuleError(
            f"{SETTING}: {name!r} holds {len(found)} Parley modules; name one as {name}:attribute"
        )
    return found[0]


def _module_of(name: str, found: object) -> Module:
    if not isinstance(found, Module):
        raise ModuleError(f"{SETTING}: {name!r} is a {type(found).__name__}, not an app.core.module.Module")
    return found
