"""Modules that cannot be composed, named by PARLEY_MODULES in tests of start-up's refusals.

`lonely` requires what no module provides; `chicken` and `egg` require each other.
"""

from __future__ import annotations

from app.core.module import Module


class Referee:
    """Provided by no module."""


class Chicken:
    pass


class Egg:
    pass


lonely = Module(name="lonely", requires=[Referee])
chicken = Module(name="chicken", providers={Chicken: lambda _ctx: Chicken()}, requires=[Egg])
egg = Module(name="egg", providers={Egg: lambda _ctx: Egg()}, requires=[Chicken])
