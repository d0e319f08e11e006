"""`/ws-docs` on the whole app, both backends: every event documented, the page escaped, 404 when off."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from markupsafe import escape

from app.core.errors import ErrorCode
from app.core.socket.protocol import FORCE_LOGOUT_REASONS
from app.core.socket.registry import EventRegistry
from app.main import MODULES, create_app
from app.modules.docs.getting_started import STEPS, regions
from tests.support.backends import Backend
from tests.support.hostile import HOSTILE, HOSTILE_MODULE

ROUTES = (
    "/ws-docs",
    "/ws-docs/spec",
    "/ws-docs/events",
    "/ws-docs/events/category/rooms",
    "/ws-docs/events/room:join",
    "/ws-docs/types.d.ts",
    "/ws-docs/static/parley-socket.js",
    "/ws-docs/static/ws-docs.js",
    "/",
)


async def _client(backend: Backend, modules: Any = None, **env: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(backend.settings(**env), modules)
    async with AsyncTestClient(app=app.litestar, base_url="http://parley.test") as client:
        client.parley = app  # type: ignore[attr-defined]
        yield client


@pytest.fixture
async def hostile_client(backend: Backend) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(backend, (*MODULES, HOSTILE_MODULE)):
        yield client


@pytest.fixture
async def disabled_client(backend: Backend) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(backend, WS_DOCS_ENABLED="false"):
        yield client


def registry_of(client: httpx.AsyncClient) -> EventRegistry:
    return client.parley.context.get(EventRegistry)  # type: ignore[attr-defined, no-any-return]


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    resolved: dict[str, Any] = spec["components"]["schemas"][ref.removeprefix("#/components/schemas/")]
    return resolved


def wire_fields(struct: Any) -> set[str]:
    return {field.encode_name for field in msgspec.structs.fields(struct)}


async def test_every_registered_event_is_in_the_spec_with_its_schema(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/ws-docs/spec")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    spec = response.json()
    registry = registry_of(app_client)
    assert registry.client_events
    assert registry.server_events
    messages = spec["components"]["messages"]
    for name, event in registry.client_events.items():
        operation = spec["channels"][name]["publish"]
        message = messages[operation["message"]["$ref"].removeprefix("#/components/messages/")]
        assert message["name"] == name
        assert operation["description"] == event.description
        assert set(resolve(spec, message["payload"])["properties"]) == wire_fields(event.payload)
        assert [example["payload"] for example in message["examples"]] == [dict(e) for e in event.examples]
        ack_message = messages[spec["channels"][f"{name}/ack"]["subscribe"]["message"]["$ref"].split("/")[-1]]
        assert ack_message["payload"] == message["x-ack"]["payload"]
        ack = resolve(spec, ack_message["payload"])
        ok, error = (resolve(spec, option) for option in ack["oneOf"])
        if isinstance(event.response, type) and issubclass(event.response, msgspec.Struct):
            assert set(resolve(spec, ok["properties"]["data"])["properties"]) == wire_fields(event.response)
        codes = resolve(spec, resolve(spec, error["properties"]["error"])["properties"]["code"])["enum"]
        assert {code.value for code in event.errors} <= set(codes)
        assert operation["tags"] == [{"name": event.category}]
    for name, server in registry.server_events.items():
        operation = spec["channels"][name]["subscribe"]
        message = messages[operation["message"]["$ref"].removeprefix("#/components/messages/")]
        assert operation["x-room"] == server.room
        assert set(resolve(spec, message["payload"])["properties"]) == wire_fields(server.payload)


async def test_events_endpoints(app_client: httpx.AsyncClient) -> None:
    registry = registry_of(app_client)
    everything = (await app_client.get("/ws-docs/events")).json()
    assert len(everything) == len(registry.client_events) + len(registry.server_events)
    assert {(e["name"], e["direction"]) for e in everything} == {
        *((name, "client_to_server") for name in registry.client_events),
        *((name, "server_to_client") for name in registry.server_events),
    }
    (join,) = (await app_client.get("/ws-docs/events/room:join")).json()
    assert join["category"] == "rooms"
    assert join["payload_schema"] == {"$ref": "#/components/schemas/RoomIn"}
    assert "RoomIn" in join["components"]
    assert "RoomJoinAck" in join["components"]
    assert join["examples"] == [{"room": "broadcast:all"}]
    assert "FORBIDDEN" in join["errors"]
    assert join["rate_limit"]["bucket"] == "default"
    rooms = (await app_client.get("/ws-docs/events/category/rooms")).json()
    assert {e["name"] for e in rooms} >= {"room:join", "room:leave"}
    assert all(e["category"] == "rooms" for e in rooms)


@pytest.mark.parametrize("path", ["/ws-docs/events/nope:nothing", "/ws-docs/events/category/nope"])
async def test_unknown_event_or_category_is_404(app_client: httpx.AsyncClient, path: str) -> None:
    response = await app_client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


async def test_static_files_are_only_the_console_scripts(app_client: httpx.AsyncClient) -> None:
    client = await app_client.get("/ws-docs/static/parley-socket.js")
    assert client.status_code == 200
    assert client.headers["content-type"].startswith("text/javascript")
    assert "class ParleySocket" in client.text
    assert (await app_client.get("/ws-docs/static/..%2Fmodules%2F__init__.py")).status_code == 404
    assert (await app_client.get("/ws-docs/static/other.js")).status_code == 404


async def test_client_types_are_served(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/ws-docs/types.d.ts")
    assert response.status_code == 200
    for name in registry_of(app_client).client_events:
        assert f'"{name}": ParleyEmit<' in response.text
    assert "export interface ServerToClientEvents {" in response.text


async def test_page_lists_every_event_and_works_offline(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/ws-docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    registry = registry_of(app_client)
    for name in [*registry.client_events, *registry.server_events]:
        assert f'<span class="event-name">{name}</span>' in page
    for category in {e.category for e in registry.client_events.values()}:
        assert f'id="category-{category}"' in page
    assert 'href="/ws-docs/spec"' in page
    assert "<code>@parley/client</code>" in page
    assert 'id="search"' in page
    assert 'id="token"' in page
    assert 'id="emit"' in page
    external = re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    assert external == []
    assert "@import" not in page
    assert "url(" not in page


async def test_registry_text_is_escaped(hostile_client: httpx.AsyncClient) -> None:
    page = (await hostile_client.get("/ws-docs")).text
    assert HOSTILE not in page
    assert "<b>everyone</b>" not in page
    assert "&lt;script&gt;alert(&#39;registry&#39;)&lt;/script&gt;" in page
    assert "&lt;b&gt;everyone&lt;/b&gt;" in page
    assert "<script>alert(" not in page
    assert "<script>window.injected" not in page
    assert "<img src=x" not in page
    assert 'href="javascript:' not in page
    assert "[click me](javascript:window.injected=true)" in page, "shown as text, not made a link"
    assert "&lt;script&gt;window.injected = true&lt;/script&gt;" in page
    assert page.count("<script") == 3  # the console's data and its two scripts, nothing else
    assert "</script><script>alert('console')" not in page
    assert "\\u003c/script\\u003e\\u003cscript\\u003ealert(\\u0027console\\u0027)" in page
    assert "&lt;/script&gt;&lt;script&gt;alert(&#39;console&#39;)" in page


async def test_docs_can_be_turned_off(disabled_client: httpx.AsyncClient) -> None:
    for path in ROUTES:
        response = await disabled_client.get(path)
        assert response.status_code == 404, path
    assert (await disabled_client.get("/health")).status_code == 200


async def test_timestamps_are_documented_as_date_time(app_client: httpx.AsyncClient) -> None:
    """Generated clients see a timestamp, not a plain string (msgspec needs tz-aware fields for it)."""
    spec = (await app_client.get("/ws-docs/spec")).json()
    timestamps = {
        f"{name}.{field}": schema.get("anyOf", [schema])[0]
        for name, component in spec["components"]["schemas"].items()
        for field, schema in component.get("properties", {}).items()
        if field.endswith(("_at", "_time"))
    }
    assert "SessionReady.server_time" in timestamps
    assert {where: schema.get("format") for where, schema in timestamps.items()} == dict.fromkeys(
        timestamps, "date-time"
    )


async def test_root_leads_to_the_docs(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/", follow_redirects=False)
    assert response.status_code in {301, 302, 307, 308}
    assert response.headers["location"] == "/ws-docs"


async def test_favicon_and_one_charset(app_client: httpx.AsyncClient) -> None:
    icon = await app_client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/svg+xml"
    assert icon.text.startswith("<svg")
    for path in (
        "/ws-docs",
        "/ws-docs/static/ws-docs.js",
        "/ws-docs/static/ws-docs.css",
        "/ws-docs/types.d.ts",
    ):
        content_type = (await app_client.get(path)).headers["content-type"]
        assert content_type.count("charset") == 1, (path, content_type)
    assert 'rel="icon" href="/ws-docs/static/favicon.svg"' in (await app_client.get("/ws-docs")).text


async def test_page_renders_markdown_and_links_error_chips_to_the_reference(
    app_client: httpx.AsyncClient,
) -> None:
    page = (await app_client.get("/ws-docs")).text
    assert "<code>group:</code>" in page, "backticks in a description become code"
    chips = set(re.findall(r'<a class="chip" href="#(error-[A-Z_]+)">', page))
    assert chips
    anchors = set(re.findall(r'id="(error-[A-Z_]+)"', page))
    assert chips <= anchors
    assert {f"error-{code.value}" for code in ErrorCode} == anchors
    assert "retry_after" in page
    for reason in FORCE_LOGOUT_REASONS:
        assert f'id="reason-{reason}"' in page


async def test_page_has_the_getting_started_path(app_client: httpx.AsyncClient) -> None:
    page = (await app_client.get("/ws-docs")).text
    assert page.index('id="getting-started"') < page.index('class="category"')
    for step in STEPS:
        assert f'id="step-{step.name}"' in page
    assert str(escape(regions("python-socketio.py")["recover"])) in page
    assert "JavaScript (@parley/client)" in page


async def test_page_sidebar_lists_every_event(app_client: httpx.AsyncClient) -> None:
    page = (await app_client.get("/ws-docs")).text
    registry = registry_of(app_client)
    entries = re.findall(r'<li class="nav-event" data-event="([a-z_.]+)">', page)
    assert len(entries) == len(registry.client_events) + len(registry.server_events)


async def test_login_helper_is_offered_on_local_and_dev_only(backend: Backend) -> None:
    for app_env, offered in (("local", True), ("dev", True), ("prod", False)):
        async for client in _client(backend, APP_ENV=app_env, WS_DOCS_ENABLED="true", JWT_SECRET="s" * 40):
            page = (await client.get("/ws-docs")).text
            assert ('id="login-helper"' in page) is offered, app_env
