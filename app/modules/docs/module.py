"""The docs module: `/ws-docs` and the protocol documentation generated from the gateway registry."""

from __future__ import annotations

from app.core.context import AppContext
from app.core.module import Module
from app.core.socket.registry import EventRegistry
from app.modules.docs.controller import DocsController
from app.modules.docs.service import DocsService


async def _provide_docs(ctx: AppContext) -> None:
    """Once every gateway is registered; built eagerly when served, so a broken schema stops start-up."""
    service = DocsService(ctx.get(EventRegistry), ctx.settings)
    ctx.provide(DocsService, service)
    if ctx.settings.ws_docs_enabled:
        service.build()


docs_module = Module(name="docs", controllers=[DocsController], on_startup=[_provide_docs])
