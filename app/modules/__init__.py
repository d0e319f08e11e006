"""The modules that make up Parley. Adding a module is one line here."""

from app.core.module import Module
from app.modules.accounts.module import accounts_module
from app.modules.announcements.module import announcements_module
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
