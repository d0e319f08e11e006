"""The docs service: the registry's events, the AsyncAPI document and the client types, built once."""

from __future__ import annotations

from functools import cached_property
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import msgspec

from app.config.settings import Settings
from app.core.socket.registry import EventRegistry
from app.modules.docs import asyncapi, page, typescript
from app.modules.docs.description import EventDoc, ProtocolDescription, describe
from app.modules.docs.schemas import SchemaCatalog, build_catalog

TITLE = "Parley socket protocol"
BASE_PATH = "/ws-docs"


class EventView(msgspec.Struct):
    """One event in one direction, with its schemas and the components they refer to."""

    name: str
    direction: str
    category: str
    description: str
    payload_schema: dict[str, Any] | None
    """None: the event takes no payload."""
    examples: list[Any]
    ack_schema: dict[str, Any] | None
    errors: list[str]
    rate_limit: dict[str, Any] | None
    room: str | None
    room_required: str | None
    auth_required: bool
    components: dict[str, Any]


def package_version() -> str:
    try:
        return version("parley")
    except PackageNotFoundError:
        return "0.0.0"


class DocsService:
    """Everything is computed on first use and kept: the registry does not change after start-up."""

    def __init__(self, registry: EventRegistry, settings: Settings) -> None:
        self.registry = registry
        self.settings = settings

    @cached_property
    def description(self) -> ProtocolDescription:
        return describe(
            self.registry,
            title=TITLE,
            version=package_version(),
            server_url=self.settings.public_url,
            rate_limits=self.settings.rate_limits,
            info=self.settings.docs_info,
        )

    @cached_property
    def catalog(self) -> SchemaCatalog:
        return build_catalog(self.description)

    @cached_property
    def _views(self) -> dict[str, EventView]:
        return {event.key: self._view(event) for event in self.description.events}

    def _view(self, event: EventDoc) -> EventView:
        payload = self.catalog.payloads.get(event.key)
        ack = (
            {"$ref": f"#/components/schemas/{self.catalog.acks[event.key]}"}
            if event.is_client_event
            else None
        )
        limit = event.rate_limit
        return EventView(
            name=event.name,
            direction=event.direction,
            category=event.category,
            description=event.description,
            payload_schema=payload,
            examples=[msgspec.to_builtins(example) for example in event.examples],
            ack_schema=ack,
            errors=[code.value for code in event.error_codes],
            rate_limit=None
            if limit is None
            else {"bucket": limit.bucket, "capacity": limit.capacity, "per_seconds": limit.per_seconds},
            room=event.room,
            room_required=event.room_required,
            auth_required=event.auth_required,
            components=self.catalog.reachable({"payload": payload, "ack": ack}),
        )

    def all_events(self) -> list[EventView]:
        return list(self._views.values())

    def events_by_category(self) -> dict[str, list[EventView]]:
        return {
            category: [self._views[event.key] for event in events]
            for category, events in self.description.by_category().items()
        }

    def event(self, name: str) -> list[EventView]:
        """Both directions of `name`; empty when no such event is registered."""
        return [self._views[event.key] for event in self.description.named(name)]

    @cached_property
    def _spec(self) -> dict[str, Any]:
        return asyncapi.generate(self.description, self.catalog)

    def asyncapi_spec(self) -> dict[str, Any]:
        """A copy of the document, so a caller's changes never reach the cached one."""
        spec: dict[str, Any] = msgspec.json.decode(self.spec_json)
        return spec

    @cached_property
    def spec_json(self) -> bytes:
        """The document as served and written by the CLI (indented, keys in generation order)."""
        return msgspec.json.format(msgspec.json.encode(self._spec), indent=2)

    @cached_property
    def _types(self) -> str:
        return typescript.client_types(self.description, self.catalog)

    def client_types(self) -> str:
        return self._types

    @cached_property
    def page_html(self) -> str:
        return page.render_page(
            self.description, self.catalog, BASE_PATH, login_helper=self.settings.app_env in {"local", "dev"}
        )

    def build(self) -> None:
        """Generate everything now, so a broken schema fails start-up rather than the first request."""
        _ = (self.spec_json, self.client_types(), self.page_html, self._views)
