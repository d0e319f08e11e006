"""A module whose event texts try to inject HTML and script into `/ws-docs`.

The integration tests read the page it produces; the browser test loads it in Chromium
(`uvicorn --factory tests.support.hostile:create_asgi`) to see that nothing of it runs.
"""

from __future__ import annotations

import msgspec
import socketio

from app.config.settings import get_settings
from app.core.module import Module
from app.core.socket import Gateway, SocketContext, server_event, ws_event, ws_response
from app.main import MODULES, create_app

HOSTILE = "<script>alert('registry')</script>"
INJECTED = '<script>window.injected = true</script><img src=x onerror="window.injected = true">'
SCRIPT_LINK = "[click me](javascript:window.injected=true)"


class Shout(msgspec.Struct):
    text: str


SHOUTED = server_event(
    "xss:shouted",
    Shout,
    description=f"Someone shouted {HOSTILE} & more. {INJECTED} {SCRIPT_LINK}",
    category="xss",
    room="<b>everyone</b>",
    examples=[{"text": "</script><script>alert('example')</script>"}],
)


class HostileGateway(Gateway):
    emits = (SHOUTED,)

    @ws_event(
        "xss:shout",
        f"Shout {HOSTILE} to the room. {INJECTED}",
        category="xss",
        examples=[{"text": "</script><script>alert('console')</script>"}],
    )
    @ws_response("xss:shout", Shout)
    async def shout(self, client: SocketContext, payload: Shout) -> Shout:
        return payload


HOSTILE_MODULE = Module(name="hostile", gateways=[HostileGateway])


def create_asgi() -> socketio.ASGIApp:
    return create_app(get_settings(), (*MODULES, HOSTILE_MODULE)).asgi
