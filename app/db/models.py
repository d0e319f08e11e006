"""Import every module's models so that migrations and metadata see all tables."""

from __future__ import annotations

import importlib

MODEL_MODULES = (
    "app.modules.accounts.models",
    "app.modules.chat.models",
    "app.modules.announcements.models",
)


def load_models() -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)
