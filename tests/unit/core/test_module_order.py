"""Start-up puts each module after the providers of what it requires, whatever the order it is given,
and refuses in one line a requirement nobody provides, a cycle, a type provided twice or a name used twice.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from app.core.module import Module, ModuleError
from app.core.module_order import order_modules


class Clock:
    pass


class Ledger:
    pass


class Mailer:
    pass


def provider() -> Any:
    """A factory for the context; these tests only order modules, so nothing is built."""
    return lambda _ctx: object()


CLOCK = Module(name="clock", providers={Clock: provider()})
LEDGER = Module(name="ledger", providers={Ledger: provider()}, requires=[Clock])
MAILER = Module(name="mailer", providers={Mailer: provider()}, requires=[Ledger, Clock])
PLAIN = Module(name="plain")


def names(modules: tuple[Module, ...]) -> list[str]:
    return [module.name for module in modules]


@pytest.mark.parametrize("given", list(itertools.permutations([CLOCK, LEDGER, MAILER, PLAIN])))
def test_every_module_comes_after_its_providers_whatever_the_order(given: tuple[Module, ...]) -> None:
    ordered = names(order_modules(given))
    assert sorted(ordered) == ["clock", "ledger", "mailer", "plain"]
    assert ordered.index("clock") < ordered.index("ledger") < ordered.index("mailer")


def test_modules_without_requirements_keep_their_order() -> None:
    first, second = Module(name="first"), Module(name="second")
    assert names(order_modules([second, PLAIN, first])) == ["second", "plain", "first"]


def test_a_module_may_require_what_it_provides_itself() -> None:
    own = Module(name="own", providers={Clock: provider()}, requires=[Clock])
    assert names(order_modules([own])) == ["own"]


def test_a_requirement_nobody_provides_is_named_with_its_module() -> None:
    with pytest.raises(ModuleError) as refused:
        order_modules([PLAIN, LEDGER])
    assert str(refused.value) == (f"module 'ledger' requires {__name__}.Clock, which no module provides")


def test_a_cycle_is_named_from_module_to_module() -> None:
    clock_needs_mail = Module(name="clock", providers={Clock: provider()}, requires=[Mailer])
    with pytest.raises(ModuleError) as refused:
        order_modules([PLAIN, MAILER, LEDGER, clock_needs_mail])
    assert str(refused.value) == "modules require each other in a cycle: mailer -> ledger -> clock -> mailer"


def test_what_core_requires_must_be_provided() -> None:
    assert names(order_modules([LEDGER, CLOCK], core_requires=[Clock])) == ["clock", "ledger"]
    needs_mail = rf"^Parley's core needs {__name__}\.Mailer, which no module provides$"
    with pytest.raises(ModuleError, match=needs_mail):
        order_modules([CLOCK, LEDGER], core_requires=[Mailer])


def test_a_type_provided_by_two_modules_is_refused() -> None:
    other_clock = Module(name="other-clock", providers={Clock: provider()})
    twice = r"Clock is provided by both module 'clock' and module 'other-clock'$"
    with pytest.raises(ModuleError, match=twice):
        order_modules([CLOCK, other_clock])


def test_a_name_listed_twice_is_refused() -> None:
    with pytest.raises(ModuleError, match=r"^module 'clock' is listed twice$"):
        order_modules([CLOCK, LEDGER, Module(name="clock")])


def test_provides_lists_the_types_of_the_providers() -> None:
    assert MAILER.provides == (Mailer,)
    assert PLAIN.provides == ()
