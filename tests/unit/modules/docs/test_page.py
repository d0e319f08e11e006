"""The page's view of the schemas: readable type labels, constraint notes, fields of a Struct."""

from __future__ import annotations

from typing import Any

import pytest

from app.modules.docs.page import (
    categories,
    console_events,
    constraint_notes,
    render_page,
    schema_view,
    type_label,
)
from app.modules.docs.schemas import build_catalog
from tests.support.docs_protocol import synthetic_description


def label(schema: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(part.text, part.link) for part in type_label(schema)]


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string"}, [("string", None)]),
        ({"$ref": "#/components/schemas/Message"}, [("Message", "Message")]),
        (
            {"anyOf": [{"$ref": "#/components/schemas/User"}, {"type": "null"}]},
            [("User", "User"), (" | ", None), ("null", None)],
        ),
        ({"type": "array", "items": {"$ref": "#/components/schemas/M"}}, [("array of ", None), ("M", "M")]),
        ({"enum": ["a", "b"]}, [('"a" | "b"', None)]),
        ({"const": False}, [("false", None)]),
        (
            {"type": "object", "additionalProperties": {"type": "integer"}},
            [("map of string → ", None), ("integer", None)],
        ),
        ({}, [("any", None)]),
    ],
)
def test_type_labels(schema: dict[str, Any], expected: list[tuple[str, str | None]]) -> None:
    assert label(schema) == expected


def test_constraint_notes() -> None:
    assert constraint_notes({"format": "uuid", "minLength": 1, "maxLength": 50, "pattern": "^a$"}) == [
        "format uuid",
        "length ≥ 1",
        "length ≤ 50",
        'matches "^a$"',
    ]


def test_payload_view_follows_the_reference_to_the_struct_fields() -> None:
    description = synthetic_description()
    catalog = build_catalog(description)
    view = schema_view("Payload", catalog.payloads["client.note.add"], catalog)
    assert [(row.name, row.required) for row in view.fields] == [
        ("board", True),
        ("text", True),
        ("tags", False),
    ]
    text = view.fields[1]
    assert text.description == "What the note says"
    assert text.notes == ["length ≥ 1", "length ≤ 50"]
    assert view.description == "A note to pin on a board."


def test_categories_group_by_direction_and_console_offers_client_events_only() -> None:
    description = synthetic_description()
    views = categories(description, build_catalog(description))
    notes = next(view for view in views if view.name == "notes")
    assert [label for label, _ in notes.groups] == ["Client → server", "Server → client"]
    assert notes.count == 4
    ack = notes.groups[0][1][0].ack
    assert ack is not None
    assert [row.name for row in ack.fields] == ["id", "pinned_at"]
    assert console_events(description) == [
        {"name": "alpha:ping", "example": {"nonce": 1}},
        {"name": "alpha:wake", "example": None},
        {"name": "note:add", "example": {"board": "b1", "text": "hello"}},
        {"name": "note:read", "example": {"board": "b1", "up_to": 7}},
    ]


def test_an_event_without_payload_shows_none_and_the_console_emits_nothing() -> None:
    description = synthetic_description()
    catalog = build_catalog(description)
    alpha = next(view for view in categories(description, catalog) if view.name == "alpha")
    wake = next(card for _, cards in alpha.groups for card in cards if card.name == "alpha:wake")
    assert wake.payload is None
    assert wake.examples == []
    page = render_page(description, catalog, "/ws-docs", login_helper=False)
    card = page.split('id="client.alpha.wake"')[1].split("</article>")[0]
    assert "none: emit the event with the ack callback alone" in card
    assert '{"example": null, "name": "alpha:wake"}' in page.split('id="console-events"')[1]
