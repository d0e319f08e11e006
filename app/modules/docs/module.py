"""The docs module: `/ws-docs` and the protocol documentation generated from the gateway registry."""

from __future__ import annotations

import logging

from app.core.context import AppContext
from app.core.http.openapi import OPENAPI_PATH
from app.core.module import Module
from app.core.socket.registry import EventRegistry
from app.modules.docs.controller import ROOT_ROUTES, DocsController
from app.modules.docs.service import BASE_PATH, DocsService

logger = logging.getLogger(__name__)


async def _provide_docs(ctx: AppContext) -> None:
    """Once every gateway is registered; built eagerly when served, so a broken schema stops start-up."""
    service = DocsService(ctx.get(EventRegistry), ctx.settings)
    ctx.provide(DocsService, service)
    if ctx.settings.ws_docs_enabled:
        service.build()
    base = ctx.settings.public_url.rstrip("/")
    socket_docs = f"{base}{BASE_PATH}" if ctx.settings.ws_docs_enabled else "off (WS_DOCS_ENABLED=false)"
    logger.info("API %s/api, socket docs %s, REST docs %s%s", base, socket_docs, base, OPENAPI_PATH)


docs_module = Module(name="docs", controllers=[DocsController, ROOT_ROUTES], on_startup=[_provide_docs])
