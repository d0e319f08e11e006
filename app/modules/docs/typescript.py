"""TypeScript declarations for clients: every schema, every ack, and the two event maps.

`ServerToClientEvents` and `ClientToServerEvents` plug into socket.io-client's generics:
`const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(url, {auth: {token}})`.
Field names stay as on the wire (snake_case).
"""

from __future__ import annotations

import json
import re
from typing import Any

from app.modules.docs.description import ProtocolDescription
from app.modules.docs.schemas import REF_PREFIX, SchemaCatalog

IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")

PRELUDE = """\
/** The ack of a failed client event; `code` is one of the event's error codes. */
export interface ParleyAckError<Code extends string = string> {
  ok: false;
  error: { code: Code; message: string; details?: ErrorDetails };
  action?: "ROLLBACK";
}

/** The ack of a client event: its data, or the error envelope. */
export type ParleyAck<Data, Code extends string = string> = { ok: true; data: Data } | ParleyAckError<Code>;

/**
 * A client event: the payload, then an optional ack callback. Without a callback a failure
 * arrives as an `exception` event instead.
 */
export type ParleyEmit<Payload, Response> = (
  ...args: [payload: Payload] | [payload: Payload, ack: (response: Response) => void]
) => void;

/** A client event that takes no payload: nothing, or the ack callback alone. */
export type ParleyEmitBare<Response> = (...args: [] | [ack: (response: Response) => void]) => void;
"""


def _property_key(name: str) -> str:
    return name if IDENTIFIER.match(name) else json.dumps(name)


def _doc(text: str | None, indent: str = "") -> str:
    if not text:
        return ""
    body = text.replace("*/", "*\\/").strip()
    if "\n" not in body:
        return f"{indent}/** {body} */\n"
    lines = "\n".join(f"{indent} * {line}".rstrip() for line in body.splitlines())
    return f"{indent}/**\n{lines}\n{indent} */\n"


def _object_type(schema: dict[str, Any], indent: str) -> str:
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    inner = indent + "  "
    lines = [
        f"{_doc(prop.get('description'), inner)}{inner}{_property_key(name)}"
        f"{'' if name in required else '?'}: {ts_type(prop, inner)};"
        for name, prop in properties.items()
    ]
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) or (extra is None and not properties):
        lines.append(f"{inner}[key: string]: {ts_type(extra or {}, inner)};")
    if not lines:
        return "{}"
    return "{\n" + "\n".join(lines) + f"\n{indent}}}"


def _literal(value: Any) -> str:
    return json.dumps(value)


def _union(parts: list[str]) -> str:
    unique = list(dict.fromkeys(parts))
    return " | ".join(unique) if unique else "never"


def _array_type(schema: dict[str, Any], indent: str) -> str:
    items = schema.get("items")
    if isinstance(items, list):
        return "[" + ", ".join(ts_type(item, indent) for item in items) + "]"
    element = ts_type(items, indent) if isinstance(items, dict) else "unknown"
    return f"({element})[]" if " " in element else f"{element}[]"


def _primitive(kind: str, schema: dict[str, Any], indent: str) -> str:
    if kind == "object":
        return _object_type(schema, indent)
    if kind == "array":
        return _array_type(schema, indent)
    return {"string": "string", "integer": "number", "number": "number", "boolean": "boolean"}.get(
        kind, "null" if kind == "null" else "unknown"
    )


def ts_type(schema: dict[str, Any], indent: str = "") -> str:
    """The TypeScript type of one JSON Schema node (draft-07, as the catalog writes them)."""
    if "$ref" in schema:
        return str(schema["$ref"]).removeprefix(REF_PREFIX)
    if "const" in schema:
        return _literal(schema["const"])
    if "enum" in schema:
        return _union([_literal(value) for value in schema["enum"]])
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            return _union([ts_type(option, indent) for option in schema[combinator]])
    if "allOf" in schema:
        return " & ".join(ts_type(part, indent) for part in schema["allOf"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return _union([_primitive(k, schema, indent) for k in kind])
    if isinstance(kind, str):
        return _primitive(kind, schema, indent)
    return "unknown"


def declaration(name: str, schema: dict[str, Any]) -> str:
    doc = _doc(schema.get("description"))
    if schema.get("type") == "object" and "properties" in schema:
        return f"{doc}export interface {name} {_object_type(schema, '')}\n"
    return f"{doc}export type {name} = {ts_type(schema)};\n"


def _event_maps(description: ProtocolDescription, catalog: SchemaCatalog) -> str:
    client_lines = []
    for event in description.client_events():
        data = ts_type(catalog.components[catalog.acks[event.key] + "Ok"]["properties"]["data"], "  ")
        codes = _union([_literal(code.value) for code in event.error_codes])
        payload = catalog.payloads.get(event.key)
        emit = "ParleyEmitBare<" if payload is None else f"ParleyEmit<{ts_type(payload, '  ')}, "
        client_lines.append(
            f"{_doc(event.description, '  ')}  {json.dumps(event.name)}: {emit}ParleyAck<{data}, {codes}>>;"
        )
    server_lines = [
        f"{_doc(f'{event.description} (to {event.room})', '  ')}  {json.dumps(event.name)}: "
        f"(payload: {ts_type(catalog.payloads[event.key], '  ')}) => void;"
        for event in description.server_events()
    ]
    return (
        "/** Events the server emits; the first generic of socket.io-client's `Socket`. */\n"
        "export interface ServerToClientEvents {\n" + "\n".join(server_lines) + "\n}\n\n"
        "/** Events a client emits, each with an optional typed ack callback; the second generic. */\n"
        "export interface ClientToServerEvents {\n" + "\n".join(client_lines) + "\n}\n"
    )


def client_types(description: ProtocolDescription, catalog: SchemaCatalog) -> str:
    header = (
        f"// {description.title} {description.version}: Socket.IO client types, generated from the "
        "server's event handlers.\n\n"
    )
    declarations = "\n".join(declaration(name, schema) for name, schema in catalog.components.items())
    return f"{header}{PRELUDE}\n{declarations}\n{_event_maps(description, catalog)}"
