"""Apply Alembic migrations programmatically (`parley db upgrade`, `make run`, tests).

Parley's revisions live in `migrations/versions`; each module named by PARLEY_MODULES may bring a
folder of its own (`Module.migrations`): a branch labelled with the module's name, whose first
revision depends on the Parley revision it builds on. `heads` applies every branch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config

from app.config.settings import Settings
from app.core.module import Module
from app.core.module_loader import load_modules

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("version_table", "alembic_version")
    config.set_main_option("path_separator", "os")
    locations = version_locations(load_modules(settings.modules))
    config.set_main_option(
        "version_locations", os.pathsep.join(str(path) for path in locations).replace("%", "%%")
    )
    config.attributes["settings"] = settings
    return config


def version_locations(modules: Sequence[Module]) -> list[Path]:
    """Parley's revisions, then each module's that brings any."""
    return [MIGRATIONS / "versions", *(module.migrations for module in modules if module.migrations)]


def upgrade(settings: Settings, revision: str = "heads") -> None:
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings), revision)
