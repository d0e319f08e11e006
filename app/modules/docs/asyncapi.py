"""Step three: the AsyncAPI 2.6.0 document, from the description and its schema catalog.

As AsyncAPI 2.x reads it, `publish` is what a client sends (client→server events) and `subscribe`
what a client receives (server→client events). One channel per event name.

A Socket.IO ack is a reply to one emit; AsyncAPI 2.6 has no reply keyword (3.0 added one), so each
ack is described the 2.x way, as what the client receives on a channel of its own: `<event>/ack`,
marked `x-socketio-ack-of`, whose `subscribe` message is the ack (`<Event>Ack`). Code generators read
it as any other message, so every ack gets its types. The emit's message also points at it with
`x-ack`, as Socket.IO tools built on AsyncAPI 2 expect. Rate limits and rooms have no keyword
either: `x-rate-limit`, `x-room` and `x-room-required`.

Each text is stated once: an event's description is its operation's; messages carry names, titles,
payloads and examples only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import msgspec

from app.modules.docs.description import COMMON_ERRORS, EventDoc, ProtocolDescription
from app.modules.docs.reference import errors_markdown
from app.modules.docs.schemas import SchemaCatalog, pascal, ref

ASYNCAPI_VERSION = "2.6.0"
SOCKETIO_PATH = "/socket.io/"
SECURITY_SCHEME = "jwt"
ACK_SUFFIX = "/ack"

INFO_DESCRIPTION = f"""\
The Socket.IO protocol of Parley, generated from the decorated gateway handlers.

Connect a Socket.IO v4+ client (Engine.IO 4) to the server at path `{SOCKETIO_PATH}`, namespace `/`,
with `auth: {{token: "<access token>"}}` (an `Authorization: Bearer` header is accepted too). The token
comes from `POST /api/auth/login`; the REST API is described at `/schema`.

Every client event is acknowledged: `{{ok: true, data}}` or
`{{ok: false, error: {{code, message, details?}}, action?}}`; `action: "ROLLBACK"` asks the client to
undo an optimistic update. Any client event may also be answered with
{", ".join(f"`{code.value}`" for code in COMMON_ERRORS)}. A client that emits without an ack
callback receives a failure as the `exception` event. The ack of event `X` is the message of channel
`X{ACK_SUFFIX}`; the token bucket of an event is its operation's `x-rate-limit`, the room a server
event goes to its operation's `x-room`.
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


def message_object(event: EventDoc, catalog: SchemaCatalog) -> dict[str, Any]:
    """The message of an event. One that takes no payload has no `payload` key (and no examples):
    AsyncAPI 2.6 makes the key optional, and its absence is what the wire carries, an emit with no
    argument. An empty-object schema would instead make generators (modelina, socket.io templates)
    produce a `{}` argument that the server refuses."""
    message: dict[str, Any] = {
        "messageId": event.key,
        "name": event.name,
        "title": event.name,
        "contentType": "application/json",
    }
    if event.key in catalog.payloads:
        message["payload"] = catalog.payloads[event.key]
        message["examples"] = [
            {"name": f"example{index + 1}", "payload": msgspec.to_builtins(example)}
            for index, example in enumerate(event.examples)
        ]
    if event.is_client_event:
        message["x-ack"] = {
            "payload": ref(catalog.acks[event.key]),
            "message": {"$ref": f"#/components/messages/{ack_key(event)}"},
            "rollbackOnError": event.optimistic,
        }
    return message


def ack_key(event: EventDoc) -> str:
    return f"{event.key}.ack"


def ack_message(event: EventDoc, catalog: SchemaCatalog) -> dict[str, Any]:
    return {
        "messageId": ack_key(event),
        "name": f"{event.name}{ACK_SUFFIX}",
        "title": f"Ack of {event.name}",
        "contentType": "application/json",
        "payload": ref(catalog.acks[event.key]),
    }


def operation_object(event: EventDoc) -> dict[str, Any]:
    verb = "emit" if event.is_client_event else "on"
    operation: dict[str, Any] = {
        "operationId": f"{verb}{pascal(event.name)}",
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


def ack_channel(event: EventDoc) -> dict[str, Any]:
    return {
        "description": f"Not an event name: the ack of `{event.name}`, passed to the callback of the emit "
        "(a Socket.IO ACK packet carrying the emit's id).",
        "subscribe": {
            "operationId": f"ack{pascal(event.name)}",
            "tags": [{"name": event.category}],
            "message": {"$ref": f"#/components/messages/{ack_key(event)}"},
        },
        "x-socketio-ack-of": event.name,
    }


def channels(description: ProtocolDescription) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for event in sorted(description.events, key=lambda e: e.name):
        side = "publish" if event.is_client_event else "subscribe"
        result.setdefault(event.name, {})[side] = operation_object(event)
        if event.is_client_event:
            result[f"{event.name}{ACK_SUFFIX}"] = ack_channel(event)
    return dict(sorted(result.items()))


def messages(description: ProtocolDescription, catalog: SchemaCatalog) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for event in description.events:
        result[event.key] = message_object(event, catalog)
        if event.is_client_event:
            result[ack_key(event)] = ack_message(event, catalog)
    return result


def info_object(description: ProtocolDescription) -> dict[str, Any]:
    info = description.info
    license_object = {"name": info.license_name}
    if info.license_url:
        license_object["url"] = info.license_url
    return {
        "title": description.title,
        "version": description.version,
        "description": f"{INFO_DESCRIPTION}\n{errors_markdown()}\n",
        "contact": {"name": info.contact_name, "url": info.contact_url, "email": info.contact_email},
        "license": license_object,
    }


def generate(description: ProtocolDescription, catalog: SchemaCatalog) -> dict[str, Any]:
    """The whole AsyncAPI 2.6.0 document as plain JSON-compatible data."""
    categories = sorted({event.category for event in description.events})
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:parley:socket",
        "info": info_object(description),
        "servers": {"parley": server_object(description.server_url)},
        "defaultContentType": "application/json",
        "channels": channels(description),
        "components": {
            "schemas": catalog.components,
            "messages": messages(description, catalog),
            "securitySchemes": {SECURITY_SCHEME: security_scheme()},
        },
        "tags": [{"name": category, "description": f"Events of `{category}`."} for category in categories],
    }
