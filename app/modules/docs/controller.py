"""`/ws-docs`: the page, the AsyncAPI document, the events as JSON, the client types, the console's scripts;
`/` leads to the page, `/favicon.ico` is Parley's icon.

With `WS_DOCS_ENABLED=false` every route but the icon answers 404, as if it did not exist.
Litestar adds `charset=utf-8` to text types itself, so the media types here name none.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from litestar import Controller, Response, Router, get
from litestar.connection import ASGIConnection
from litestar.exceptions import NotFoundException
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Redirect

from app.core.context import AppContext
from app.core.http.security_headers import page_policy
from app.modules.docs.service import BASE_PATH, DocsService, EventView

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"
STATIC_FILES = {
    "parley-socket.js": "text/javascript",
    "ws-docs.js": "text/javascript",
    "ws-docs.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
JSON = "application/json"


def docs_enabled(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    ctx: AppContext = connection.app.state.ctx
    if not ctx.settings.ws_docs_enabled:
        raise NotFoundException


@cache
def static_file(file_name: str) -> bytes:
    return (STATIC_DIR / file_name).read_bytes()


def _service(app_ctx: AppContext) -> DocsService:
    return app_ctx.get(DocsService)


def _found(events: list[EventView], what: str) -> list[EventView]:
    if not events:
        raise NotFoundException(f"No {what}")
    return events


class DocsController(Controller):
    path = BASE_PATH
    guards = [docs_enabled]
    include_in_schema = False

    @get("/", media_type="text/html")
    async def page(self, app_ctx: AppContext) -> Response[str]:
        """The page, with a Content-Security-Policy for its own scripts and the socket's origin."""
        policy = page_policy(app_ctx.settings.public_url)
        return Response(_service(app_ctx).page_html, headers={"Content-Security-Policy": policy})

    @get("/spec", media_type=JSON)
    async def spec(self, app_ctx: AppContext) -> bytes:
        return _service(app_ctx).spec_json

    @get("/types.d.ts", media_type="text/plain")
    async def types(self, app_ctx: AppContext) -> str:
        return _service(app_ctx).client_types()

    @get("/events")
    async def events(self, app_ctx: AppContext) -> list[EventView]:
        return _service(app_ctx).all_events()

    @get("/events/category/{category:str}")
    async def category(self, app_ctx: AppContext, category: str) -> list[EventView]:
        events = _service(app_ctx).events_by_category().get(category, [])
        return _found(events, f"category {category!r}")

    @get("/events/{name:str}")
    async def event(self, app_ctx: AppContext, name: str) -> list[EventView]:
        """Both directions of the event (`chat:read` is a client and a server event)."""
        return _found(_service(app_ctx).event(name), f"event {name!r}")

    @get("/static/{file_name:str}")
    async def static(self, file_name: str) -> Response[bytes]:
        if file_name not in STATIC_FILES:
            raise NotFoundException(f"No file {file_name!r}")
        return Response(static_file(file_name), media_type=STATIC_FILES[file_name])


@get("/", guards=[docs_enabled], include_in_schema=False)
async def root() -> Redirect:
    """The server's root leads to its documentation where that is served (404 elsewhere)."""
    return Redirect(path=BASE_PATH)


@get("/favicon.ico", include_in_schema=False)
async def favicon() -> Response[bytes]:
    return Response(static_file("favicon.svg"), media_type=STATIC_FILES["favicon.svg"])


ROOT_ROUTES = Router(path="/", route_handlers=[root, favicon], include_in_schema=False)
