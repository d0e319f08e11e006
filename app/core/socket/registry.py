"""Every event of every module's gateways, discovered once when the app is built."""

from __future__ import annotations

from collections.abc import Sequence

from app.core.socket.decorators import EventSpec, GatewayDefinitionError, ServerEvent
from app.core.socket.gateway import Gateway


class EventRegistry:
    """`core_events`: server events the core emits (`session:ready`, `force_logout`, `exception`)."""

    def __init__(self, gateways: Sequence[Gateway], core_events: Sequence[ServerEvent] = ()) -> None:
        self.client_events: dict[str, EventSpec] = {}
        self.server_events: dict[str, ServerEvent] = {event.name: event for event in core_events}
        for gateway in gateways:
            for spec in type(gateway).handlers.values():
                if spec.name in self.client_events:
                    raise GatewayDefinitionError(f"event {spec.name!r} is handled twice")
                self.client_events[spec.name] = spec
            for event in type(gateway).emits:
                known = self.server_events.get(event.name)
                if known is not None and known is not event:
                    raise GatewayDefinitionError(f"server event {event.name!r} is declared twice")
                self.server_events[event.name] = event

    def all_events(self) -> list[EventSpec | ServerEvent]:
        return [*self.client_events.values(), *self.server_events.values()]
