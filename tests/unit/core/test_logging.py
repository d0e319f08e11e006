"""Logging: one line per event; LOG_FORMAT=json gives one JSON object per line with the extra fields."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from app.core.logging import configure_logging, redact_query


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def fail() -> None:
    raise RuntimeError("boom")


def test_json_format_is_one_object_per_line_with_extras(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    log = logging.getLogger("parley.test")
    log.info("socket %s connected", "abc", extra={"sid": "abc", "user_id": "u-1"})
    log.warning("second line\nwith a newline inside")
    try:
        fail()
    except RuntimeError:
        log.exception("handler failed", extra={"event": "chat:send"})
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3
    first, second, third = (json.loads(line) for line in lines)
    assert first["message"] == "socket abc connected"
    assert first["level"] == "INFO"
    assert first["logger"] == "parley.test"
    assert (first["sid"], first["user_id"]) == ("abc", "u-1")
    assert first["time"].endswith("+00:00")
    assert second["message"] == "second line\nwith a newline inside"
    assert third["event"] == "chat:send"
    assert "RuntimeError: boom" in third["exception"]


def test_level_filters_and_text_format_shows_extras(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("WARNING", "text")
    log = logging.getLogger("parley.test")
    log.info("hidden")
    log.warning("shown", extra={"sid": "s-9"})
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert "WARNING" in lines[0]
    assert "shown" in lines[0]
    assert "sid=s-9" in lines[0]


def test_non_json_values_in_extras_are_rendered_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    logging.getLogger("parley.test").info("odd", extra={"thing": object()})
    entry = json.loads(capsys.readouterr().err.strip())
    assert entry["thing"].startswith("<object object")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_uvicorn_color_message_is_not_repeated(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", fmt)
    logging.getLogger("parley.test.uvicorn_like").info(
        "Started server process [%d]",
        42,
        extra={"color_message": "Started server process [\x1b[36m%d\x1b[0m]"},
    )
    line = capsys.readouterr().err.strip()
    assert "Started server process [42]" in line
    assert "color_message" not in line
    assert "\x1b" not in line


@pytest.mark.parametrize(
    ("target", "shown"),
    [
        (
            "/socket.io/?EIO=4&transport=polling&t=Pq1&sid=s3cretSid",
            "/socket.io/?EIO=4&transport=polling&t=***&sid=***",
        ),
        (
            "/socket.io/?EIO=4&transport=websocket&token=eyJhbGciOi.x.y",
            "/socket.io/?EIO=4&transport=websocket&token=***",
        ),
        ("/ws?eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLWJ5dGVz", "/ws?***"),
        ("/api/conversations?flag", "/api/conversations?flag"),
        ("/health", "/health"),
    ],
)
def test_query_values_but_the_safe_ones_are_hidden(target: str, shown: str) -> None:
    assert redact_query(target) == shown


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_server_access_and_websocket_lines_never_show_a_token_or_a_polling_sid(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", fmt)
    target = "/socket.io/?EIO=4&transport=polling&sid=s3cretSid&token=t0ken"
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", target, "1.1", 200
    )
    logging.getLogger("uvicorn.error").info('%s - "WebSocket %s" [accepted]', "127.0.0.1:1", target)
    logging.getLogger("parley.test").info("an own line keeps %s", "a?b=c")
    err = capsys.readouterr().err
    assert "s3cretSid" not in err
    assert "t0ken" not in err
    assert err.count("/socket.io/?EIO=4&transport=polling&sid=***&token=***") == 2
    assert "an own line keeps a?b=c" in err
