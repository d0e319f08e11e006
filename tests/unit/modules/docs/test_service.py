"""The docs service on the synthetic gateways: lookups, and everything built once."""

from __future__ import annotations

import msgspec

from app.modules.docs.service import DocsService
from tests.support.docs_protocol import settings, synthetic_registry


def service() -> DocsService:
    return DocsService(synthetic_registry(), settings())


def test_all_events_and_by_category() -> None:
    docs = service()
    assert [(e.name, e.direction) for e in docs.all_events()] == [
        ("alpha:ping", "client_to_server"),
        ("alpha:wake", "client_to_server"),
        ("note:add", "client_to_server"),
        ("note:read", "client_to_server"),
        ("note:added", "server_to_client"),
        ("note:read", "server_to_client"),
    ]
    grouped = docs.events_by_category()
    assert list(grouped) == ["alpha", "notes"]
    assert [e.name for e in grouped["alpha"]] == ["alpha:ping", "alpha:wake"]


def test_an_event_without_payload_has_no_payload_schema() -> None:
    (wake,) = service().event("alpha:wake")
    assert wake.payload_schema is None
    assert wake.examples == []
    assert wake.ack_schema == {"$ref": "#/components/schemas/AlphaWakeAck"}


def test_event_lookup_gives_both_directions_and_nothing_for_unknown_names() -> None:
    docs = service()
    assert [e.direction for e in docs.event("note:read")] == ["client_to_server", "server_to_client"]
    assert docs.event("note:unknown") == []
    (add,) = docs.event("note:add")
    assert add.ack_schema == {"$ref": "#/components/schemas/NoteAddAck"}
    assert sorted(add.components) == [
        "ErrorDetails",
        "NoteAck",
        "NoteAddAck",
        "NoteAddAckError",
        "NoteAddAckOk",
        "NoteAddError",
        "NoteAddErrorCode",
        "NotePayload",
    ]
    assert add.rate_limit is not None
    assert add.rate_limit["bucket"] == "chat"
    (added,) = docs.event("note:added")
    assert added.ack_schema is None
    assert added.room == "board:{boardId}"
    assert added.errors == []


def test_everything_is_built_once_and_the_spec_handed_out_is_a_copy() -> None:
    docs = service()
    docs.build()
    assert docs.spec_json is docs.spec_json
    assert docs.page_html is docs.page_html
    assert docs.client_types() is docs.client_types()
    spec = docs.asyncapi_spec()
    assert spec == msgspec.json.decode(docs.spec_json)
    spec["channels"].clear()
    assert docs.asyncapi_spec()["channels"]
