"""Step two: JSON Schemas of every payload and ack, from the same Structs that validate them.

`msgspec.json.schema_components` gives one schema per Struct under `#/components/schemas/`; each
client event adds its ack: `{ok: true, data}` or the error envelope with the codes it may answer.
The schemas are rewritten to JSON Schema draft-07, the dialect AsyncAPI 2.6 schemas build on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from app.core.errors import ErrorDetails
from app.modules.docs.description import EventDoc, ProtocolDescription

REF_PREFIX = "#/components/schemas/"
ERROR_DETAILS = "ErrorDetails"
Schema = dict[str, Any]


class SchemaNameConflictError(ValueError):
    """An ack schema's name is already taken by a Struct."""


@dataclass(frozen=True, slots=True)
class SchemaCatalog:
    """`components` by name; per event key, its payload schema (none for an event that takes no
    payload) and (client events) its ack's name."""

    components: dict[str, Schema]
    payloads: dict[str, Schema]
    acks: dict[str, str]

    def reachable(self, schema: Schema) -> dict[str, Schema]:
        """The components `schema` refers to, directly or through other components."""
        found: dict[str, Schema] = {}
        pending = list(referenced_names(schema))
        while pending:
            name = pending.pop()
            if name not in found:
                found[name] = self.components[name]
                pending.extend(referenced_names(found[name]))
        return dict(sorted(found.items()))


def ref(name: str) -> Schema:
    return {"$ref": f"{REF_PREFIX}{name}"}


def referenced_names(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        target = node.get("$ref")
        if isinstance(target, str) and target.startswith(REF_PREFIX):
            yield target.removeprefix(REF_PREFIX)
        for value in node.values():
            yield from referenced_names(value)
    elif isinstance(node, list):
        for value in node:
            yield from referenced_names(value)


def pascal(event_name: str) -> str:
    """`chat:read_all` → `ChatReadAll`."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[:_]", event_name) if part)


def _identifier(name: str) -> str:
    """Component names usable as TypeScript identifiers (msgspec qualifies clashing names with dots)."""
    return re.sub(r"\W", "_", name)


def to_draft7(node: Any, names: dict[str, str]) -> Any:
    """Tuples as draft-07 `items` arrays; references renamed to identifiers."""
    if isinstance(node, list):
        return [to_draft7(value, names) for value in node]
    if not isinstance(node, dict):
        return node
    converted: Schema = {}
    for key, value in node.items():
        if key == "prefixItems":
            converted["items"] = to_draft7(value, names)
            if node.get("items") is False:
                converted["additionalItems"] = False
        elif key == "items" and "prefixItems" in node:
            continue
        elif key == "$ref" and isinstance(value, str) and value.startswith(REF_PREFIX):
            converted[key] = REF_PREFIX + names[value.removeprefix(REF_PREFIX)]
        else:
            converted[key] = to_draft7(value, names)
    return converted


def _named_enum(node: Schema, fallback: str) -> tuple[str, Schema]:
    """An inline enum as a component: named by its title, else after the field it types."""
    name = str(node.get("title") or fallback)
    return name, {"title": name, **{key: value for key, value in node.items() if key != "title"}}


def hoist_enums(node: Any, owner: str, found: dict[str, Schema]) -> Any:
    """Inline enums replaced by references to named components (added to `found`), so code
    generators name them (`MessageKind`) instead of numbering them (`AnonymousSchema_8`)."""
    if isinstance(node, list):
        return [hoist_enums(value, owner, found) for value in node]
    if not isinstance(node, dict):
        return node
    if "enum" in node and "$ref" not in node:
        name, component = _named_enum(node, owner)
        if found.setdefault(name, component) != component:
            raise SchemaNameConflictError(f"two different enums are both named {name!r}")
        return ref(name)
    hoisted: Schema = {}
    for key, value in node.items():
        if key == "properties" and isinstance(value, dict):
            hoisted[key] = {
                field: hoist_enums(schema, owner + pascal(field), found) for field, schema in value.items()
            }
        else:
            hoisted[key] = hoist_enums(value, owner, found)
    return hoisted


def ack_schemas(event: EventDoc, data: Schema) -> dict[str, Schema]:
    """`<Event>Ack` = `<Event>AckOk` | `<Event>AckError`; the error's code is `<Event>ErrorCode`.

    Every part is a named component, so generators produce one type per part of every ack.
    """
    base = pascal(event.name)
    error_properties: Schema = {"ok": {"type": "boolean", "const": False}, "error": ref(f"{base}Error")}
    if event.optimistic:
        error_properties["action"] = {
            "type": "string",
            "const": "ROLLBACK",
            "description": "Undo the optimistic update the client applied before the ack.",
        }
    return {
        f"{base}Ack": {
            "title": f"{base}Ack",
            "description": f"The argument of the ack callback of `{event.name}`.",
            "oneOf": [ref(f"{base}AckOk"), ref(f"{base}AckError")],
        },
        f"{base}AckOk": {
            "title": f"{base}AckOk",
            "type": "object",
            "properties": {"ok": {"type": "boolean", "const": True}, "data": data},
            "required": ["ok", "data"],
        },
        f"{base}AckError": {
            "title": f"{base}AckError",
            "type": "object",
            "properties": error_properties,
            "required": ["ok", "error"],
        },
        f"{base}Error": {
            "title": f"{base}Error",
            "type": "object",
            "properties": {
                "code": ref(f"{base}ErrorCode"),
                "message": {"type": "string", "description": "Safe to show to a user."},
                "details": ref(ERROR_DETAILS),
            },
            "required": ["code", "message"],
        },
        f"{base}ErrorCode": {
            "title": f"{base}ErrorCode",
            "description": f"The codes `{event.name}` may answer; each is explained in the error reference.",
            "type": "string",
            "enum": [code.value for code in event.error_codes],
        },
    }


def _types_of(description: ProtocolDescription) -> list[Any]:
    types: dict[Any, None] = {ErrorDetails: None}
    for event in description.events:
        if event.payload is not None:
            types[event.payload] = None
        if event.is_client_event and event.response is not None:
            types[event.response] = None
    return list(types)


def _add(components: dict[str, Schema], generated: dict[str, Schema], what: str) -> None:
    clash = sorted(generated.keys() & components.keys())
    if clash:
        raise SchemaNameConflictError(f"{clash[0]} of {what} clashes with a Struct")
    components.update(generated)


def build_catalog(description: ProtocolDescription) -> SchemaCatalog:
    types = _types_of(description)
    schemas, raw_components = msgspec.json.schema_components(types, ref_template=REF_PREFIX + "{name}")
    names = {name: _identifier(name) for name in raw_components}
    enums: dict[str, Schema] = {}
    components: dict[str, Schema] = {
        names[name]: hoist_enums(to_draft7(s, names), names[name], enums)
        for name, s in raw_components.items()
    }
    by_type = {t: to_draft7(s, names) for t, s in zip(types, schemas, strict=True)}
    payloads: dict[str, Schema] = {}
    acks: dict[str, str] = {}
    for event in description.events:
        if event.payload is not None:
            payloads[event.key] = by_type[event.payload]
        if event.is_client_event:
            data = by_type[event.response] if event.response is not None else {"type": "object"}
            data = hoist_enums(data, f"{pascal(event.name)}AckData", enums)
            _add(components, ack_schemas(event, data), f"the ack of {event.name!r}")
            acks[event.key] = f"{pascal(event.name)}Ack"
    _add(components, enums, "an enum")
    return SchemaCatalog(dict(sorted(components.items())), payloads, acks)
