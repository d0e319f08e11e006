"""A handler without docs cannot exist: gateway classes with incomplete metadata fail when defined."""

from __future__ import annotations

import inspect
from typing import Any

import msgspec
import pytest

from app.core.socket import Gateway, server_event, ws_event, ws_response
from app.core.socket.decorators import GatewayDefinitionError
from app.main import MODULES


class Ping(msgspec.Struct):
    nonce: int


def test_public_coroutine_without_ws_event_is_refused() -> None:
    with pytest.raises(GatewayDefinitionError, match=r"undocumented: public coroutine without @ws_event"):

        class Bad(Gateway):
            async def undocumented(self, payload: Ping) -> Ping:
                return payload


def test_a_handler_without_payload_handles_an_event_that_takes_none() -> None:
    class Good(Gateway):
        @ws_event("a:b", "Does a thing.", category="c")
        @ws_response("a:b", Ping)
        async def handle(self) -> Ping:
            return Ping(1)

    assert Good.handlers["handle"].payload is None


def test_an_example_for_an_event_without_payload_is_refused() -> None:
    with pytest.raises(GatewayDefinitionError, match=r"example 0 given, but the event takes no payload"):

        class Bad(Gateway):
            @ws_event("a:b", "Does a thing.", category="c", examples=[{"nonce": 1}])
            @ws_response("a:b", Ping)
            async def handle(self) -> Ping:
                return Ping(1)


def test_a_struct_parameter_under_another_name_is_refused() -> None:
    with pytest.raises(GatewayDefinitionError, match=r"the Struct parameter 'ping' must be named `payload`"):

        class Bad(Gateway):
            @ws_event("a:b", "Does a thing.", category="c", examples=[{"nonce": 1}])
            @ws_response("a:b", Ping)
            async def handle(self, ping: Ping) -> Ping:
                return ping


def test_handler_without_response_is_refused() -> None:
    with pytest.raises(GatewayDefinitionError, match=r"needs @ws_response"):

        class Bad(Gateway):
            @ws_event("a:b", "Does a thing.", category="c", examples=[{"nonce": 1}])
            async def handle(self, payload: Ping) -> None:
                return None


def test_response_without_ws_event_is_refused() -> None:
    with pytest.raises(GatewayDefinitionError, match=r"no @ws_event"):

        class Bad(Gateway):
            @ws_response("a:b", Ping)
            async def handle(self, payload: Ping) -> Ping:
                return Ping(1)


def test_a_payload_that_is_no_struct_is_refused() -> None:
    with pytest.raises(GatewayDefinitionError, match=r"`payload` must be annotated with a Struct"):

        class Bad(Gateway):
            @ws_event("a:b", "Does a thing.", category="c", examples=[{"nonce": 1}])
            @ws_response("a:b", Ping)
            async def handle(self, payload: dict[str, int]) -> Ping:
                return Ping(1)


def test_the_payload_type_is_read_from_the_signature() -> None:
    class Good(Gateway):
        @ws_event("a:b", "Does a thing.", category="c", examples=[{"nonce": 1}])
        @ws_response("a:b", Ping)
        async def handle(self, payload: Ping) -> Ping:
            return payload

    assert Good.handlers["handle"].payload is Ping


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"description": "  "}, "needs a description"),
        ({"category": ""}, "needs a category"),
        ({"examples": []}, "needs at least one example"),
        ({"examples": [{"nonce": "one"}]}, "example 0 does not fit Ping"),
        ({"name": "BadName"}, "is not `area:action`"),
    ],
)
def test_incomplete_metadata_is_refused(overrides: dict[str, Any], problem: str) -> None:
    arguments: dict[str, Any] = {
        "name": "a:b",
        "description": "Does a thing.",
        "category": "c",
        "examples": [{"nonce": 1}],
    }
    arguments.update(overrides)
    name = arguments.pop("name")
    description = arguments.pop("description")
    with pytest.raises(GatewayDefinitionError, match=problem):

        class Bad(Gateway):
            @ws_event(name, description, **arguments)
            @ws_response(name, Ping)
            async def handle(self, payload: Ping) -> Ping:
                return Ping(1)


def test_ack_declared_for_another_event_is_refused() -> None:
    with pytest.raises(GatewayDefinitionError, match=r"@ws_response names 'a:c'"):

        class Bad(Gateway):
            @ws_event("a:b", "Does a thing.", category="c", examples=[{"nonce": 1}])
            @ws_response("a:c", Ping)
            async def handle(self, payload: Ping) -> Ping:
                return Ping(1)


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"room": ""}, "needs the room it goes to"),
        ({"description": ""}, "needs a description"),
        ({"examples": []}, "needs at least one example"),
        ({"examples": [{"nonce": None}]}, "does not fit Ping"),
    ],
)
def test_server_event_without_docs_is_refused(overrides: dict[str, Any], problem: str) -> None:
    arguments: dict[str, Any] = {
        "description": "Sent.",
        "category": "c",
        "room": "user:{id}",
        "examples": [{"nonce": 1}],
    }
    arguments.update(overrides)
    with pytest.raises(GatewayDefinitionError, match=problem):
        server_event("a:sent", Ping, **arguments)


def test_every_registered_gateway_method_is_a_documented_handler() -> None:
    """The modules' gateways: each public coroutine is a handler with complete docs, each server event too."""
    gateways = [gateway for module in MODULES for gateway in module.gateways]
    assert gateways
    for gateway in gateways:
        public = {
            name
            for name, value in vars(gateway).items()
            if inspect.iscoroutinefunction(value) and not name.startswith("_")
        }
        assert public <= set(gateway.handlers), f"{gateway.__qualname__}: {public - set(gateway.handlers)}"
        for spec in gateway.handlers.values():
            assert spec.description.strip()
            assert spec.category.strip()
            assert spec.payload is not None
            assert spec.examples
        for event in gateway.emits:
            assert event.description.strip()
            assert event.room.strip()
            assert event.examples
