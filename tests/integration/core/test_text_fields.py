"""Every text field of the REST API against hostile variants, on both backends.

Each field is sent NUL, a control character, a bidirectional override, a trailing newline (where it
holds one line) and one character past its limit: each answers 422 naming the field, never a 500.
The same field at its limit is accepted.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.clients import PASSWORD, Account, register_admin, register_and_login

Send = Callable[[str], Awaitable[httpx.Response]]


@dataclass(frozen=True)
class Field:
    name: str
    limit: int
    send: Send
    one_line: bool = True

    def at_limit(self) -> str:
        """A value of exactly `limit` characters that is valid for the field."""
        return "a" + "".join(chr(ord("b") + index % 20) for index in range(self.limit - 1))


def bearer(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.access_token}"}


def hostile(field: Field) -> dict[str, str]:
    valid = "Valid-1x"
    variants = {
        "NUL": f"{valid}\x00",
        "bell": f"{valid}\x07",
        "override": f"{valid}\u202e",
        "past the limit": field.at_limit() + "z",
    }
    if field.one_line:
        variants["trailing newline"] = f"{valid}\n"
    return variants


async def fields(http: httpx.AsyncClient) -> list[Field]:
    alice = await register_and_login(http)
    admin = await register_admin(http, http.parley.context.settings)  # type: ignore[attr-defined]
    created = await http.post(
        "/api/conversations",
        json={"kind": "group", "title": "t", "participant_ids": []},
        headers=bearer(alice),
    )
    conversation = created.json()["data"]["id"]

    def post(path: str, account: Account | None, **body: Any) -> Send:
        async def send(value: str) -> httpx.Response:
            payload = {key: value if item is None else item for key, item in body.items()}
            headers = bearer(account) if account else {}
            return await http.post(path, json=payload, headers=headers)

        return send

    def unique_username(value: str) -> Send:
        return post("/api/auth/register", None, username=value, password=PASSWORD)

    async def register_with(key: str, value: str) -> httpx.Response:
        body = {"username": f"u{uuid.uuid4().hex[:12]}", "password": PASSWORD, key: value}
        return await http.post("/api/auth/register", json=body)

    async def rename(value: str) -> httpx.Response:
        return await http.patch(
            f"/api/conversations/{conversation}", json={"title": value}, headers=bearer(alice)
        )

    async def search(value: str) -> httpx.Response:
        path = f"/api/conversations/{conversation}/messages/search"
        return await http.get(path, params={"q": value}, headers=bearer(alice))

    async def lookup(value: str) -> httpx.Response:
        return await http.get("/api/users", params={"username": value}, headers=bearer(alice))

    async def register_username(value: str) -> httpx.Response:
        return await unique_username(value[:-8] + uuid.uuid4().hex[:8] if len(value) >= 32 else value)(value)

    announcement = {"title": "t", "body": "b"}
    return [
        Field("username", 32, register_username),
        Field("display_name", 100, lambda value: register_with("display_name", value)),
        Field("password", 128, lambda value: register_with("password", value)),
        Field(
            "device",
            64,
            post("/api/auth/login", None, username=alice.username, password=PASSWORD, device=None),
        ),
        Field("title", 200, post("/api/conversations", alice, kind="group", title=None, participant_ids=[])),
        Field("title", 200, rename),
        Field(
            "body",
            4000,
            post(f"/api/conversations/{conversation}/messages", alice, body=None),
            one_line=False,
        ),
        Field("q", 100, search),
        Field("username", 32, lookup),
        Field("title", 200, post("/api/admin/announcements", admin, **{**announcement, "title": None})),
        Field(
            "body",
            4000,
            post("/api/admin/announcements", admin, **{**announcement, "body": None}),
            one_line=False,
        ),
        Field("url", 2048, post("/api/admin/announcements", admin, **{**announcement, "url": None})),
    ]


async def test_every_text_field_refuses_hostile_variants_naming_the_field(
    app_client: httpx.AsyncClient,
) -> None:
    problems: list[str] = []
    for field in await fields(app_client):
        for variant, value in hostile(field).items():
            url_variant = field.name == "url" and variant != "past the limit"
            response = await field.send(f"https://x.io/{value}" if url_variant else value)
            error = (response.json().get("error") or {}) if response.status_code != 500 else {}
            named = (error.get("details") or {}).get("field")
            if response.status_code != 422 or named != field.name:
                problems.append(
                    f"{field.name} {variant}: {response.status_code} {named} {response.text[:120]}"
                )
        value = field.at_limit() if field.name != "url" else "https://x.io/" + field.at_limit()[13:]
        at_limit = await field.send(value)
        if at_limit.status_code >= 400 and not (field.name == "username" and at_limit.status_code == 404):
            problems.append(f"{field.name} at its limit: {at_limit.status_code} {at_limit.text[:120]}")
    assert problems == []


async def test_announcement_metadata_refuses_control_characters_at_any_depth(
    app_client: httpx.AsyncClient,
) -> None:
    admin = await register_admin(app_client, app_client.parley.context.settings)  # type: ignore[attr-defined]
    for metadata, where in (
        ({"note": "a\x00b"}, "metadata.note"),
        ({"nested": [{"deep": "\u202eevil"}]}, "metadata.nested.0.deep"),
        ({"k\x00": 1}, "metadata"),
    ):
        response = await app_client.post(
            "/api/admin/announcements",
            json={"title": "t", "body": "b", "metadata": metadata},
            headers=bearer(admin),
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"]["field"] == where
    fine = await app_client.post(
        "/api/admin/announcements",
        json={"title": "t", "body": "b", "metadata": {"lines": "one\ntwo", "n": [1, None]}},
        headers=bearer(admin),
    )
    assert fine.status_code == 201, fine.text
