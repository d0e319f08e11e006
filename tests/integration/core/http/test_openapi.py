"""`/schema`: the OpenAPI document describes errors as the envelope Parley sends, names every
operation, says who to contact, and its page needs nothing from outside this server."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.support.clients import register_and_login

ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}


async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


async def test_every_operation_has_a_summary_in_words(app_client: httpx.AsyncClient) -> None:
    spec = await document(app_client)
    found = operations(spec)
    assert len(found) > 20
    for method, path, operation in found:
        summary = operation.get("summary", "")
        assert " " in summary or summary in {"Liveness"}, (method, path, summary)


async def test_errors_are_documented_as_the_envelope(app_client: httpx.AsyncClient) -> None:
    spec = await document(app_client)
    for method, path, operation in operations(spec):
        if path.startswith(("/health", "/metrics")):
            continue
        errors = {
            status: response for status, response in operation["responses"].items() if int(status) >= 400
        }
        assert {"400", "422", "500", "503"} <= set(errors), (method, path)
        for status, response in errors.items():
            assert response["content"]["application/json"]["schema"] == ENVELOPE, (method, path, status)
            assert re.match(r"`[A-Z_]+`: ", response["description"]), (method, path, status)
    envelope = spec["components"]["schemas"]["ErrorEnvelope"]
    assert set(envelope["properties"]) == {"success", "data", "message", "error", "timestamp"}
    assert "status_code" not in str(spec), "no trace of the framework's own error shape"


async def test_error_statuses_follow_what_the_operation_does(app_client: httpx.AsyncClient) -> None:
    spec = await document(app_client)
    login = spec["paths"]["/api/auth/login"]["post"]["responses"]
    assert "401" not in login, "logging in needs no token"
    assert "429" in login
    conversation = spec["paths"]["/api/conversations/{conversation_id}"]["get"]["responses"]
    assert {"401", "403", "404"} <= set(conversation)
    assert "429" not in conversation, "reads are not rate limited"
    assert "RATE_LIMITED" in spec["paths"]["/api/users"]["get"]["responses"]["429"]["description"]


async def test_the_documented_envelope_is_what_an_error_answers(app_client: httpx.AsyncClient) -> None:
    spec = await document(app_client)
    account = await register_and_login(app_client)
    headers = {"Authorization": f"Bearer {account.access_token}"}
    answer = await app_client.get(f"/api/conversations/{'0' * 8}-0000-4000-8000-{'0' * 12}", headers=headers)
    assert answer.status_code == 404
    body = answer.json()
    assert set(body) == set(spec["components"]["schemas"]["ErrorEnvelope"]["properties"])
    assert body["success"] is False
    assert body["error"]["code"] == "NOT_FOUND"


async def test_contact_and_license_come_from_the_settings(app_client: httpx.AsyncClient) -> None:
    info = (await document(app_client))["info"]
    settings = app_client.parley.context.settings  # type: ignore[attr-defined]
    assert info["contact"]["email"] == settings.docs_info.contact_email
    assert info["contact"]["url"] == settings.docs_info.contact_url
    assert info["license"]["name"] == settings.docs_info.license_name


async def test_the_page_and_its_assets_come_from_this_server(app_client: httpx.AsyncClient) -> None:
    page = await app_client.get("/schema")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert "/schema/static/swagger-ui-bundle.js" in assets
    assert all(asset.startswith("/schema/") for asset in assets), assets
    for asset in assets:
        assert (await app_client.get(asset)).status_code == 200, asset
    assert (await app_client.get("/schema/static/../../pyproject.toml")).status_code == 404
    assert (await app_client.get("/schema/static/swagger-ui.js.map")).status_code == 404
