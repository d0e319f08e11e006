"""The composition root: the modules that make up Parley, composed into one app.

Adding a module of Parley's own is one line in `MODULES`; an application's own modules are named by
PARLEY_MODULES. `app.core` composes whatever it is given and knows none.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.config.settings import Settings
from app.core.app_factory import ParleyApp, build_app
from app.core.module import Module
from app.core.module_loader import load_modules
from app.modules.accounts.module import accounts_module
from app.modules.announcements.module import announcements_module
from app.modules.bench.module import bench_module
from app.modules.chat.module import chat_module
from app.modules.docs.module import docs_module
from app.modules.health.module import health_module
from app.modules.presence.module import presence_module
from app.modules.realtime.module import realtime_module

MODULES: tuple[Module, ...] = (
    health_module,
    accounts_module,
    realtime_module,
    chat_module,
    presence_module,
    announcements_module,
    docs_module,
)


def modules_for(settings: Settings) -> tuple[Module, ...]:
    """`MODULES`, the bench-only events when BENCH_EVENTS_ENABLED (README "Benchmarks"), then the
    application's own modules that PARLEY_MODULES names (README "Write a module")."""
    own = (*MODULES, bench_module) if settings.bench_events_enabled else MODULES
    return (*own, *load_modules(settings.modules))


def create_app(
    settings: Settings, modules: Sequence[Module] | None = None, *, worker: int | None = None
) -> ParleyApp:
    """The app of one process: `modules_for(settings)` unless `modules` says otherwise."""
    return build_app(settings, modules_for(settings) if modules is None else modules, worker=worker)
