"""Step three: the AsyncAPI 2.6.0 document, from the description and its schema catalog.

As AsyncAPI 2.x reads it, `publish` is what a client sends (client→server events) and `subscribe`
what a client receives (server→client events). One channel per event name; Socket.IO acks, rate
limits and rooms have no AsyncAPI 2.6 keyword, so they are extension fields: `x-ack` (the ack
schema and the error codes), `x-rate-limit` and `x-room`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import msgspec

from app.modules.docs.description import COMMON_ERRORS, EventDoc, ProtocolDescription
from app.modules.docs.schemas import SchemaCatalog, pascal, ref

ASYNCAPI_VERSION = "2.6.0"
SOCKETIO_PATH = "/socket.io/"
SECURITY_SCHEME = "jwt"

INFO_DESCRIPTION = f"""\
The Socket.IO protocol of Parley, generated from the decorated gateway handlers.

Connect a Socket.IO v4+ client (Engine.IO 4) to the server at path `{SOCKETIO_PATH}`, namespace `/`,
with `auth: {{token: "<access token>"}}` (an `Authorization: Bearer` header is accepted too).
A refused connection gets `connect_error` with `{{code, message}}`, code one of `UNAUTHORIZED`,
`TOKEN_EXPIRED`, `SESSION_REVOKED`.

Every client event is acknowledged: `{{ok: true, data}}` or
`{{ok: false, error: {{code, message, details?}}, action?}}`; `action: "ROLLBACK"` asks the client to
undo an optimistic update. Any client event may also be answered with
{", ".join(f"`{code.value}`" for code in COMMON_ERRORS)}. A client that emits without an ack
callback receives a failure as the `exception` event. The ack of each event is described by its
message's `x-ack`; its token bucket by the operation's `x-rate-limit`; the room a server event goes
to by the operation's `x-room`.
"""


def server_object(public_url: str) -> dict[str, Any]:
    parts = urlsplit(public_url)
    secure = parts.scheme in {"https", "wss"}
    return {
        "url": f"{'wss' if secure else 'ws'}://{parts.netloc}{parts.path.rstrip('/')}",
        "protocol": "wss" if secure else "ws",
        "description": f"Socket.IO 5 over Engine.IO 4 at path `{SOCKETIO_PATH}`, namespace `/`, "
        "websocket or long-polling transport.",
        "security": [{SECURITY_SCHEME: []}],
        "x-socketio": {"path": SOCKETIO_PATH, "namespace": "/", "transports": ["websocket", "polling"]},
    }


def security_scheme() -> dict[str, Any]:
    return {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The access token, sent in the Socket.IO handshake as `auth: {token}` "
        "(or as an `Authorization: Bearer` header).",
    }


def summary_of(description: str) -> str:
    """The first sentence, for one-line listings."""
    first, _, _ = description.strip().partition(". ")
    return first.rstrip(".") + "."


def message_object(event: EventDoc, catalog: SchemaCatalog) -> dict[str, Any]:
    message: dict[str, Any] = {
        "messageId": event.key,
        "name": event.name,
        "title": event.name,
        "summary": summary_of(event.description),
        "description": event.description,
        "contentType": "application/json",
        "tags": [{"name": event.category}],
        "payload": catalog.payloads[event.key],
        "examples": [
            {"name": f"example{index + 1}", "payload": msgspec.to_builtins(example)}
            for index, example in enumerate(event.examples)
        ],
    }
    if event.is_client_event:
        message["x-ack"] = {
            "description": "Passed to the ack callback of the emit.",
            "payload": ref(catalog.acks[event.key]),
            "errors": [code.value for code in event.error_codes],
            "rollbackOnError": event.optimistic,
        }
    return message


def operation_object(event: EventDoc) -> dict[str, Any]:
    verb = "emit" if event.is_client_event else "on"
    operation: dict[str, Any] = {
        "operationId": f"{verb}{pascal(event.name)}",
        "summary": summary_of(event.description),
        "description": event.description,
        "tags": [{"name": event.category}],
        "message": {"$ref": f"#/components/messages/{event.key}"},
    }
    if event.rate_limit is not None:
        operation["x-rate-limit"] = {
            "bucket": event.rate_limit.bucket,
            "capacity": event.rate_limit.capacity,
            "perSeconds": event.rate_limit.per_seconds,
        }
    if event.room_required is not None:
        operation["x-room-required"] = event.room_required
    if event.room is not None:
        operation["x-room"] = event.room
    if event.is_client_event:
        operation["x-auth-required"] = event.auth_required
    return operation


def channels(description: ProtocolDescription) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for event in sorted(description.events, key=lambda e: e.name):
        channel = result.setdefault(event.name, {"description": ""})
        side = "publish" if event.is_client_event else "subscribe"
        channel[side] = operation_object(event)
        label = "Client → server" if event.is_client_event else f"Server → client, to `{event.room}`"
        channel["description"] = "\n\n".join(
            part for part in (channel["description"], f"{label}: {event.description}") if part
        )
    return result


def generate(description: ProtocolDescription, catalog: SchemaCatalog) -> dict[str, Any]:
    """The whole AsyncAPI 2.6.0 document as plain JSON-compatible data."""
    categories = sorted({event.category for event in description.events})
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:parley:socket",
        "info": {
            "title": description.title,
            "version": description.version,
            "description": INFO_DESCRIPTION,
        },
        "servers": {"parley": server_object(description.server_url)},
        "defaultContentType": "application/json",
        "channels": channels(description),
        "components": {
            "schemas": catalog.components,
            "messages": {event.key: message_object(event, catalog) for event in description.events},
            "securitySchemes": {SECURITY_SCHEME: security_scheme()},
        },
        "tags": [{"name": category, "description": f"Events of `{category}`."} for category in categories],
    }
