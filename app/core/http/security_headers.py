"""Security headers on every answer of the Litestar app (the REST API, `/ws-docs`, health, schema),
added by a `before_send` hook, which also sees the answers no route handled.

An answer that sets its own Content-Security-Policy keeps it (the `/ws-docs` page allows its own
scripts, styles and socket origin); any other HTML page (the OpenAPI page, whose Swagger UI is
served from this server) may load only this server's scripts, styles and images and call only it;
any other answer (JSON) may load nothing at all.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import Message, Scope

NO_FRAMES = "frame-ancestors 'none'"
API_POLICY = f"default-src 'none'; {NO_FRAMES}; base-uri 'none'; form-action 'none'"
ALWAYS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


OWN_PAGE_POLICY = (
    f"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    f"{NO_FRAMES}; base-uri 'none'; form-action 'none'"
)


def page_policy(public_url: str) -> str:
    """The policy of a page of this server: its own scripts and styles, sockets to its own origin and
    to PUBLIC_URL's (http and ws alike), nothing else, in no frame."""
    origin = urlsplit(public_url)
    secure = origin.scheme == "https"
    sockets = [
        f"{'https' if secure else 'http'}://{origin.netloc}",
        f"{'wss' if secure else 'ws'}://{origin.netloc}",
    ]
    return (
        f"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' {' '.join(sockets)}; {NO_FRAMES}; base-uri 'none'; form-action 'none'"
    )


async def add_security_headers(message: Message, scope: Scope) -> None:
    """Litestar's `before_send` hook: runs for every answer, those no route handled (404) included."""
    if message["type"] != "http.response.start" or scope["type"] != ScopeType.HTTP:
        return
    headers = MutableScopeHeaders.from_message(message)
    for name, value in ALWAYS.items():
        if name not in headers:
            headers[name] = value
    if "content-security-policy" not in headers:
        html = headers.get("content-type", "").startswith("text/html")
        headers["content-security-policy"] = OWN_PAGE_POLICY if html else API_POLICY
