"""`session:ready` composed from the core's fields and the modules' typed parts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import pytest

from app.config.settings import Settings
from app.core.socket.decorators import DEFAULT_BUCKET
from app.core.socket.ready import LimitPart, ReadyPart, compose_limits, compose_session_ready
from app.core.socket.schemas import RateLimitView, UserView
from app.main import MODULES
from app.modules.chat.declarations import CHAT_BUCKET
from app.modules.presence.declarations import TYPING_BUCKET


class Score(msgspec.Struct):
    points: int


async def _never(*_: Any) -> Any:
    raise AssertionError("not called in these tests")


def _part(schema: Any, example: Any, fallback: Any = None) -> ReadyPart:
    return ReadyPart(_never, schema, "a part", example, fallback)


TTL = {"typing_ttl": LimitPart(lambda settings: settings.typing_ttl, float, 6)}
LIMITS = compose_limits([("typing", TTL)])(1024, {"default": RateLimitView(1, 1.0)}, 10, 6.0)
BASE = {
    "user": UserView("u1", "alice", "Alice"),
    "session_id": "s1",
    "rooms": ["user:u1"],
    "server_time": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
}


def test_parts_are_typed_fields_between_the_core_fields_and_limits() -> None:
    shape = compose_session_ready([("game", {"score": _part(Score | None, {"points": 3})})])
    schema = msgspec.json.schema(shape.payload_type)
    ready = schema["$defs"]["SessionReady"]
    assert list(ready["properties"]) == ["user", "session_id", "rooms", "server_time", "score", "limits"]
    assert ready["properties"]["score"]["anyOf"][0] == {"$ref": "#/$defs/Score"}
    assert ready["properties"]["score"]["description"] == "a part"
    assert shape.event.name == "session:ready"
    assert shape.event.examples[0]["score"] == {"points": 3}


def test_the_payload_sends_each_part_or_its_fallback() -> None:
    score = _part(Score | None, {"points": 3})
    shape = compose_session_ready([("game", {"score": score}), ("news", {"news": _part(list[str], [], [])})])
    produced = msgspec.json.decode(msgspec.json.encode(shape.payload(BASE, {"score": Score(5)}, LIMITS)))
    assert produced["score"] == {"points": 5}
    assert produced["news"] == [], "a part that produced nothing is sent as its fallback"
    assert produced["limits"]["max_rooms"] == 10


def test_a_key_taken_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="'score' of module b is already taken"):
        compose_session_ready([("a", {"score": _part(int, 1, 0)}), ("b", {"score": _part(int, 1, 0)})])
    with pytest.raises(ValueError, match="'rooms' of module a"):
        compose_session_ready([("a", {"rooms": _part(int, 1, 0)})])


def test_a_fallback_that_does_not_fit_its_type_is_refused() -> None:
    with pytest.raises(ValueError, match="fallback does not fit"):
        compose_session_ready([("a", {"score": _part(Score, {"points": 1})})])


def test_an_example_that_does_not_fit_is_refused_as_any_event_example() -> None:
    from app.core.socket.decorators import GatewayDefinitionError

    with pytest.raises(GatewayDefinitionError, match="does not fit"):
        compose_session_ready([("a", {"score": _part(Score | None, {"points": "many"})})])


def test_modules_add_limits_after_the_core_s() -> None:
    shape = compose_session_ready([], [("typing", TTL)])
    limits = msgspec.json.schema(shape.payload_type)["$defs"]["Limits"]
    assert list(limits["properties"]) == ["max_payload_bytes", "rate_limits", "max_rooms", "typing_ttl"]
    assert shape.event.examples[0]["limits"]["typing_ttl"] == 6


def test_limits_are_read_from_the_settings_with_the_default_bucket_and_each_one_used() -> None:
    settings = Settings.from_env(
        {"TYPING_TTL": "4", "RATE_LIMIT_CHAT": "5/2", "RATE_LIMIT_DEFAULT": "9/1"}, env_file=None
    )
    shape = compose_session_ready([], [("typing", TTL)])
    buckets = [CHAT_BUCKET, DEFAULT_BUCKET, CHAT_BUCKET, TYPING_BUCKET]
    limits = msgspec.to_builtins(shape.limits(settings, buckets))
    assert limits["rate_limits"] == {
        "default": {"capacity": 9, "per_seconds": 1.0},
        "chat": {"capacity": 5, "per_seconds": 2.0},
        "typing": {"capacity": 5, "per_seconds": 1.0},
    }
    assert limits["typing_ttl"] == 4.0
    assert limits["max_rooms"] == settings.socket.max_rooms


def test_a_limit_taken_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="'typing_ttl' of module b is already taken"):
        compose_limits([("a", TTL), ("b", TTL)])
    with pytest.raises(ValueError, match="'max_rooms' of module a"):
        compose_limits([("a", {"max_rooms": LimitPart(lambda settings: 1, int, 1)})])


def test_events_draw_from_the_buckets_their_modules_declare() -> None:
    buckets = {
        spec.name: spec.rate_limit
        for module in MODULES
        for gateway in module.gateways
        for spec in gateway.handlers.values()
    }
    assert buckets["chat:send"] is CHAT_BUCKET
    assert buckets["chat:typing"] is TYPING_BUCKET
    assert buckets["room:join"] is DEFAULT_BUCKET
    settings = Settings.from_env({"RATE_LIMIT_CHAT": "5/2", "RATE_LIMIT_TYPING": "3/1"}, env_file=None)
    assert CHAT_BUCKET.size(settings.rate_limits) == settings.rate_limits.chat
    assert TYPING_BUCKET.size(settings.rate_limits) == settings.rate_limits.typing
