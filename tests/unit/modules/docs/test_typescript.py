"""Docs pipeline, the client types: schemas and the event maps as TypeScript declarations."""

from __future__ import annotations

import pytest

from app.modules.docs.schemas import build_catalog
from app.modules.docs.typescript import client_types, declaration, ts_type
from tests.support.docs_protocol import synthetic_description


def types_of() -> str:
    description = synthetic_description()
    return client_types(description, build_catalog(description))


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string"}, "string"),
        ({"type": "integer"}, "number"),
        ({"type": "boolean"}, "boolean"),
        ({"type": "null"}, "null"),
        ({}, "unknown"),
        ({"$ref": "#/components/schemas/Message"}, "Message"),
        ({"const": True}, "true"),
        ({"enum": ["a", "b"]}, '"a" | "b"'),
        ({"anyOf": [{"type": "string"}, {"type": "null"}]}, "string | null"),
        ({"type": "array", "items": {"type": "string"}}, "string[]"),
        ({"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "null"}]}}, "(string | null)[]"),
        ({"type": "array", "items": [{"type": "integer"}, {"type": "string"}]}, "[number, string]"),
        ({"type": "object"}, "{\n  [key: string]: unknown;\n}"),
        (
            {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Limit"}},
            "{\n  [key: string]: Limit;\n}",
        ),
        ({"type": ["string", "null"]}, "string | null"),
    ],
)
def test_schema_to_type(schema: dict[str, object], expected: str) -> None:
    assert ts_type(schema) == expected


def test_struct_becomes_an_interface_with_optional_fields_and_docs() -> None:
    text = declaration(
        "Note",
        {
            "description": "A note.",
            "type": "object",
            "properties": {
                "text": {"type": "string", "description": "Body */ end"},
                "tags": {"type": "array"},
            },
            "required": ["text"],
        },
    )
    assert text == (
        "/** A note. */\n"
        "export interface Note {\n"
        "  /** Body *\\/ end */\n"
        "  text: string;\n"
        "  tags?: unknown[];\n"
        "}\n"
    )


def test_every_schema_is_declared() -> None:
    text = types_of()
    description = synthetic_description()
    for name in build_catalog(description).components:
        assert f"export interface {name} " in text or f"export type {name} = " in text


def test_event_maps_for_socket_io_generics() -> None:
    text = types_of()
    assert "export interface ServerToClientEvents {" in text
    assert "export interface ClientToServerEvents {" in text
    server_map = text.split("export interface ServerToClientEvents {")[1].split("}\n")[0]
    assert '"note:added": (payload: NoteAdded) => void;' in server_map
    assert '"note:read": (payload: ReadState) => void;' in server_map
    client_map = text.split("export interface ClientToServerEvents {")[1]
    assert (
        '"note:add": ParleyEmit<NotePayload, ParleyAck<NoteAck, "FORBIDDEN" | "NOT_FOUND" | '
        '"VALIDATION_ERROR" | "RATE_LIMITED" | "PAYLOAD_TOO_LARGE" | "UNAVAILABLE" | "INTERNAL">>;'
    ) in client_map
    assert '"note:read": ParleyEmit<ReadPayload, ParleyAck<ReadPayload, ' in client_map
    assert '"note:added":' not in client_map
    assert '"alpha:wake": ParleyEmitBare<ParleyAck<PingPayload, ' in client_map


def test_an_event_without_payload_takes_the_ack_callback_alone() -> None:
    text = types_of()
    assert (
        "export type ParleyEmitBare<Response> = (...args: [] | [ack: (response: Response) => void]) => void;"
    ) in text


def test_ack_envelope_types() -> None:
    text = types_of()
    assert "export interface ParleyAckError<Code extends string = string> {" in text
    assert 'action?: "ROLLBACK";' in text
    assert "export type ParleyAck<Data, Code extends string = string> = { ok: true; data: Data }" in text


def test_ack_callback_is_optional() -> None:
    """An emit may leave the ack out (its failure then comes as `exception`); with one, it is typed."""
    text = types_of()
    assert "export type ParleyEmit<Payload, Response> = (\n" in text
    assert "...args: [payload: Payload] | [payload: Payload, ack: (response: Response) => void]" in text
