"""The REST API's OpenAPI document and its page at `/schema`.

The page is Swagger UI from the `swagger-ui-bundle-v2` package (PyPI), served by Parley itself with
a script file of its own: no CDN and no inline script, so it works offline under the same strict
Content-Security-Policy as every other page. Errors are documented as the envelope Parley sends,
`{success: false, data: null, message, error: {code, message, details}, timestamp}`, one response per
status an operation can answer, described from the error reference.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal

import msgspec
import swagger_ui_bundle
from litestar import Litestar, Request, Response, Router, get
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.openapi.spec import Contact, License
from litestar.routes import HTTPRoute

from app.config.settings import Settings
from app.core.errors import ERROR_REFERENCE, HTTP_STATUS, ErrorCode, ErrorDetails
from app.core.http.rate_limit import WRITE_METHODS
from app.core.types import UtcDateTime

OPENAPI_PATH = "/schema"
MALFORMED_STATUS = 400
"""`VALIDATION_ERROR` for a body that is not JSON at all (a readable but wrong one answers 422)."""
OWN_STATIC = Path(__file__).resolve().parents[2] / "static"
ASSETS = {
    "swagger-ui.css": (Path(str(swagger_ui_bundle.swagger_ui_path)), "text/css"),
    "swagger-ui-bundle.js": (Path(str(swagger_ui_bundle.swagger_ui_path)), "text/javascript"),
    "swagger-init.js": (OWN_STATIC, "text/javascript"),
    "favicon.svg": (OWN_STATIC, "image/svg+xml"),
}
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="{base}/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="{base}/static/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-spec="{base}/openapi.json"></div>
<script src="{base}/static/swagger-ui-bundle.js"></script>
<script src="{base}/static/swagger-init.js"></script>
</body>
</html>
"""


class ErrorBody(msgspec.Struct):
    code: str
    message: str
    details: ErrorDetails | None = None


class ErrorEnvelope(msgspec.Struct):
    """Every failed REST call; `error.code` is one of the error reference's codes."""

    success: Literal[False]
    data: None
    message: str
    error: ErrorBody
    timestamp: UtcDateTime


@cache
def asset(file_name: str) -> bytes:
    folder, _ = ASSETS[file_name]
    return (folder / file_name).read_bytes()


@get("/static/{file_name:str}", include_in_schema=False, sync_to_thread=False)
def swagger_asset(file_name: str) -> Response[bytes]:
    if file_name not in ASSETS:
        raise NotFoundException(f"No file {file_name!r}")
    return Response(asset(file_name), media_type=ASSETS[file_name][1])


class OfflineSwaggerPlugin(OpenAPIRenderPlugin):
    """Swagger UI, all of it served from this server."""

    def __init__(self) -> None:
        super().__init__(path="/swagger")

    def render(self, _request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = str(openapi_schema.get("info", {}).get("title", "API"))
        return PAGE.format(title=title.replace("<", "&lt;"), base=OPENAPI_PATH).encode()

    def receive_router(self, router: Router) -> None:
        router.register(swagger_asset)


def openapi_config(settings: Settings, version: str) -> OpenAPIConfig:
    info = settings.docs_info
    return OpenAPIConfig(
        title="Parley",
        version=version,
        description="The REST API of Parley. Log in with `POST /api/auth/login`, then send "
        "`Authorization: Bearer <access_token>`. The socket protocol is described at `/ws-docs`.",
        contact=Contact(name=info.contact_name, url=info.contact_url, email=info.contact_email),
        license=License(name=info.license_name, url=info.license_url),
        path=OPENAPI_PATH,
        render_plugins=[OfflineSwaggerPlugin()],
    )


def _codes_of(route: HTTPRoute, handler: HTTPRouteHandler, method: str) -> list[ErrorCode]:
    """The codes an operation can answer: from its signature (a token, an admin, a body or query),
    the resource its path names, and its method (writes are rate limited and may conflict)."""
    parameters = set(handler.parsed_fn_signature.parameters)
    names_resource = bool(route.path_parameters)
    codes = [ErrorCode.VALIDATION_ERROR]
    if parameters & {"identity", "admin"}:
        codes += [ErrorCode.UNAUTHORIZED, ErrorCode.TOKEN_EXPIRED, ErrorCode.SESSION_REVOKED]
    if "admin" in parameters or names_resource:
        codes.append(ErrorCode.FORBIDDEN)
    if names_resource:
        codes.append(ErrorCode.NOT_FOUND)
    if method in WRITE_METHODS:
        codes.append(ErrorCode.CONFLICT)
    if method in WRITE_METHODS or handler.opt.get("rate_limited"):
        codes.append(ErrorCode.RATE_LIMITED)
    return [*codes, ErrorCode.UNAVAILABLE, ErrorCode.INTERNAL]


def _response(codes: list[ErrorCode]) -> ResponseSpec:
    text = " ".join(f"`{code.value}`: {ERROR_REFERENCE[code].meaning}" for code in codes)
    return ResponseSpec(data_container=ErrorEnvelope, description=text, generate_examples=False)


def document_errors(app: Litestar) -> None:
    """Give every documented operation its error responses as the envelope, grouped by status."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for method, (handler, _) in route.route_handler_map.items():
            if not handler.resolve_include_in_schema() or route.path.startswith(("/health", "/metrics")):
                continue
            by_status: dict[int, list[ErrorCode]] = {MALFORMED_STATUS: [ErrorCode.VALIDATION_ERROR]}
            for code in _codes_of(route, handler, method):
                by_status.setdefault(HTTP_STATUS[code], []).append(code)
            errors = {status: _response(codes) for status, codes in sorted(by_status.items())}
            handler.responses = {**errors, **(handler.responses or {})}
