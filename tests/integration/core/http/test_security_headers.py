"""Security headers on the REST API and `/ws-docs`, on both backends."""

from __future__ import annotations

import re

import httpx

from tests.support.clients import register_and_login

API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def assert_hardened(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def directives(policy: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())


async def test_api_answers_may_load_nothing_and_frame_nowhere(app_client: httpx.AsyncClient) -> None:
    account = await register_and_login(app_client)
    answers = [
        await app_client.get("/api/auth/me", headers={"Authorization": f"Bearer {account.access_token}"}),
        await app_client.get("/api/auth/me"),  # 401 from the authentication dependency
        await app_client.get("/api/nothing-here"),  # 404 from routing
        await app_client.post("/api/auth/login", content=b"{", headers={"Content-Type": "application/json"}),
        await app_client.get("/health"),
    ]
    for response in answers:
        assert_hardened(response)
        assert response.headers["content-security-policy"] == API_POLICY, response.request.url


async def test_the_docs_page_allows_its_own_scripts_styles_and_socket_origin_only(
    app_client: httpx.AsyncClient,
) -> None:
    page = await app_client.get("/ws-docs")
    assert page.status_code == 200
    assert_hardened(page)
    policy = directives(page.headers["content-security-policy"])
    public = app_client.parley.context.settings.public_url  # type: ignore[attr-defined]
    host = public.split("://", 1)[1]
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["connect-src"].split() == ["'self'", f"http://{host}", f"ws://{host}"]
    assert "<style>" not in page.text, "no inline style for the policy to refuse"
    assert '<script src="/ws-docs/static/ws-docs.js">' in page.text
    styles = await app_client.get("/ws-docs/static/ws-docs.css")
    assert styles.status_code == 200
    assert styles.headers["content-type"].startswith("text/css")
    assert_hardened(await app_client.get("/ws-docs/spec"))


async def test_the_openapi_page_loads_only_this_servers_assets(app_client: httpx.AsyncClient) -> None:
    page = await app_client.get("/schema/swagger")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert_hardened(page)
    policy = dict(
        part.strip().split(" ", 1)
        for part in page.headers["content-security-policy"].split(";")
        if part.strip()
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert "<script>" not in page.text, "no inline script for the policy to refuse"
    assert "http" not in page.text, "no asset from elsewhere"
    for asset in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        loaded = await app_client.get(asset)
        assert loaded.status_code == 200, asset
        assert_hardened(loaded)
