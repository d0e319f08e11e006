"""The `/ws-docs` page: the description and schemas as readable views, rendered by jinja2.

The template lives in `app/docs_templates/`; autoescaping is on, so every text from the registry
(examples, patterns, names) reaches the browser escaped, and descriptions go through Markdown with
raw HTML off (`markdown.py`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from app.modules.docs import getting_started, reference
from app.modules.docs.description import DIRECTIONS, EventDoc, ProtocolDescription
from app.modules.docs.markdown import markdown, markdown_inline
from app.modules.docs.schemas import REF_PREFIX, SchemaCatalog

if TYPE_CHECKING:
    import jinja2

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "docs_templates"
TEMPLATE = "ws_docs.html"
DIRECTION_LABELS = {"client_to_server": "Client → server", "server_to_client": "Server → client"}
DIRECTION_ARROWS = {"client_to_server": "→", "server_to_client": "←"}
CONSTRAINTS = (
    ("format", "format {}"),
    ("minLength", "length ≥ {}"),
    ("maxLength", "length ≤ {}"),
    ("pattern", "matches {}"),
    ("minimum", "≥ {}"),
    ("maximum", "≤ {}"),
    ("exclusiveMinimum", "> {}"),
    ("exclusiveMaximum", "< {}"),
    ("minItems", "items ≥ {}"),
    ("maxItems", "items ≤ {}"),
    ("default", "default {}"),
)


@dataclass(frozen=True, slots=True)
class TypePart:
    """A piece of a type label; `link` names the schema a reference points to."""

    text: str
    link: str | None = None


@dataclass(frozen=True, slots=True)
class FieldRow:
    name: str
    type: list[TypePart]
    required: bool
    notes: list[str]
    description: str


@dataclass(frozen=True, slots=True)
class SchemaView:
    """A schema as a table of fields (objects) or a single type label (anything else)."""

    title: str
    type: list[TypePart]
    description: str = ""
    fields: list[FieldRow] = field(default_factory=list)
    raw: str = ""


@dataclass(frozen=True, slots=True)
class EventCard:
    anchor: str
    name: str
    direction: str
    direction_label: str
    direction_arrow: str
    description: str
    payload: SchemaView | None
    """None: the event takes no payload."""
    ack: SchemaView | None
    errors: list[str]
    optimistic: bool
    rate_limit: str
    room: str | None
    room_required: str | None
    auth_required: bool
    examples: list[str]


@dataclass(frozen=True, slots=True)
class CategoryView:
    name: str
    groups: list[tuple[str, list[EventCard]]]

    @property
    def count(self) -> int:
        return sum(len(cards) for _, cards in self.groups)


def _join(parts: list[list[TypePart]], separator: str) -> list[TypePart]:
    joined: list[TypePart] = []
    for index, part in enumerate(parts):
        if index:
            joined.append(TypePart(separator))
        joined.extend(part)
    return joined


def type_label(schema: dict[str, Any]) -> list[TypePart]:
    """A short readable type: `string`, `array of Message`, `string | null`, `"a" | "b"`."""
    if "$ref" in schema:
        name = str(schema["$ref"]).removeprefix(REF_PREFIX)
        return [TypePart(name, name)]
    if "const" in schema:
        return [TypePart(json.dumps(schema["const"]))]
    if "enum" in schema:
        return [TypePart(" | ".join(json.dumps(value) for value in schema["enum"]))]
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            return _join([type_label(option) for option in schema[combinator]], " | ")
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items")
        if isinstance(items, list):
            return [TypePart("["), *_join([type_label(i) for i in items], ", "), TypePart("]")]
        return [TypePart("array of "), *type_label(items if isinstance(items, dict) else {})]
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return [TypePart("map of string → "), *type_label(schema["additionalProperties"])]
    if isinstance(kind, str):
        return [TypePart(kind)]
    return [TypePart("any")]


def constraint_notes(schema: dict[str, Any]) -> list[str]:
    """`format uuid`, `length ≤ 50`, `matches "^[a-z]+$"` (values other than formats as JSON)."""
    return [
        template.format(schema[key] if key == "format" else json.dumps(schema[key], ensure_ascii=False))
        for key, template in CONSTRAINTS
        if key in schema
    ]


def resolved(schema: Any, catalog: SchemaCatalog, seen: frozenset[str] = frozenset()) -> Any:
    """`schema` with every reference replaced by what it names; a reference back into its own
    chain (a recursive type) is left as it is."""
    if isinstance(schema, list):
        return [resolved(item, catalog, seen) for item in schema]
    if not isinstance(schema, dict):
        return schema
    target = schema.get("$ref")
    if isinstance(target, str) and target.startswith(REF_PREFIX):
        name = target.removeprefix(REF_PREFIX)
        if name in seen:
            return schema
        siblings = {key: value for key, value in schema.items() if key != "$ref"}
        return {**resolved(catalog.components[name], catalog, seen | {name}), **siblings}
    return {key: resolved(value, catalog, seen) for key, value in schema.items()}


def schema_view(title: str, schema: dict[str, Any], catalog: SchemaCatalog) -> SchemaView:
    """Follow one reference, so a payload shows its Struct's fields right away."""
    target = schema
    if "$ref" in schema:
        target = catalog.components[str(schema["$ref"]).removeprefix(REF_PREFIX)]
    properties: dict[str, Any] = target.get("properties", {})
    required = set(target.get("required", []))
    rows = [
        FieldRow(
            name,
            type_label(prop),
            name in required,
            constraint_notes(prop),
            str(prop.get("description", "")),
        )
        for name, prop in properties.items()
    ]
    return SchemaView(
        title=title,
        type=type_label(schema),
        description=str(target.get("description", "")),
        fields=rows,
        raw=json.dumps(resolved(schema, catalog), indent=2, ensure_ascii=False),
    )


def event_card(event: EventDoc, catalog: SchemaCatalog) -> EventCard:
    ack = None
    if event.is_client_event:
        ok_schema = catalog.components[catalog.acks[event.key] + "Ok"]
        ack = schema_view("Ack data", ok_schema["properties"]["data"], catalog)
    return EventCard(
        anchor=event.key,
        name=event.name,
        direction=event.direction,
        direction_label=DIRECTION_LABELS[event.direction],
        direction_arrow=DIRECTION_ARROWS[event.direction],
        description=event.description,
        payload=schema_view("Payload", catalog.payloads[event.key], catalog)
        if event.key in catalog.payloads
        else None,
        ack=ack,
        errors=[code.value for code in event.error_codes],
        optimistic=event.optimistic,
        rate_limit=str(event.rate_limit) if event.rate_limit is not None else "",
        room=event.room,
        room_required=event.room_required,
        auth_required=event.auth_required,
        examples=[
            json.dumps(example, indent=2, ensure_ascii=False, default=str) for example in event.examples
        ],
    )


def categories(description: ProtocolDescription, catalog: SchemaCatalog) -> list[CategoryView]:
    views = []
    for name, events in description.by_category().items():
        groups = [
            (
                DIRECTION_LABELS[direction],
                [event_card(e, catalog) for e in events if e.direction == direction],
            )
            for direction in DIRECTIONS
        ]
        views.append(CategoryView(name, [(label, cards) for label, cards in groups if cards]))
    return views


def struct_schemas(catalog: SchemaCatalog) -> list[SchemaView]:
    """The named schemas: Structs and enums (the ack schemas are shown with their events instead)."""
    bases = [name.removesuffix("Ack") for name in catalog.acks.values()]
    generated = {
        f"{base}{suffix}" for base in bases for suffix in ("Ack", "AckOk", "AckError", "Error", "ErrorCode")
    }
    return [
        schema_view(name, schema, catalog)
        for name, schema in catalog.components.items()
        if name not in generated
    ]


def console_events(description: ProtocolDescription) -> list[dict[str, Any]]:
    """What the "try it" console offers: each client event with its first example; `null` for an
    event that takes no payload, which the console emits with none."""
    return [
        {
            "name": event.name,
            "example": None if event.payload is None else msgspec.to_builtins(event.examples[0]),
        }
        for event in description.client_events()
    ]


def environment() -> jinja2.Environment:
    import jinja2  # only a server whose page is asked for pays for importing it

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["markdown"] = markdown
    env.filters["markdown_inline"] = markdown_inline
    return env


def render_page(
    description: ProtocolDescription, catalog: SchemaCatalog, base_path: str, *, login_helper: bool
) -> str:
    """The page; `login_helper` adds the console's username/password form (local and dev only)."""
    return (
        environment()
        .get_template(TEMPLATE)
        .render(
            title=description.title,
            version=description.version,
            server_url=description.server_url,
            base=base_path,
            categories=categories(description, catalog),
            schemas=struct_schemas(catalog),
            console_events=console_events(description),
            event_count=len(description.events),
            steps=getting_started.step_views(),
            errors=reference.error_rows(),
            reasons=reference.reason_rows(),
            errors_intro=reference.ERRORS_INTRO,
            login_helper=login_helper,
        )
    )
