"""Logging set-up: one line per event, text or JSON, and no secret from a request line."""

from __future__ import annotations

import datetime as dt
import logging
import re
import sys
from typing import Any

import msgspec

# Record attributes that are not extras; uvicorn's `color_message` repeats the message with ANSI codes.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; `extra={...}` fields (sid, user_id …) become keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return msgspec.json.encode(entry, enc_hook=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = [f"{k}={v}" for k, v in record.__dict__.items() if k not in _STANDARD]
        if extras:
            first, _, rest = text.partition("\n")
            text = f"{first} [{' '.join(extras)}]" + (f"\n{rest}" if rest else "")
        return text


SAFE_QUERY_PARAMETERS = frozenset({"EIO", "transport"})
"""Query parameters an access log line keeps; every other value (a token, a polling `sid`) is hidden."""
REDACTED = "***"
_PARAMETER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_SERVER_LOGGERS = ("uvicorn.access", "uvicorn.error")


def redact_query(target: str) -> str:
    """A request target with the value of each query parameter but the safe ones hidden.

    A name that does not look like one (a token sent as the whole query, say) is hidden too.
    """
    path, question, query = target.partition("?")
    if not question:
        return target
    kept = []
    for item in query.split("&"):
        name, equals, _ = item.partition("=")
        if name in SAFE_QUERY_PARAMETERS:
            kept.append(item)
        elif _PARAMETER_NAME.match(name):
            kept.append(f"{name}={REDACTED}" if equals else name)
        else:
            kept.append(REDACTED)
    return f"{path}?{'&'.join(kept)}"


class RedactRequestTargets(logging.Filter):
    """Hides query values in the server's access and websocket lines, which name the request target.

    Socket.IO clients may carry a token in the query string, and a long-polling `sid` is all it takes
    to read and write another client's session while it lasts.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_query(arg) if isinstance(arg, str) and "?" in arg else arg for arg in record.args
            )
        return True


class ParleyHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one handler Parley installs on the root logger; others (a test's capture) are left alone."""


def configure_logging(level: str, fmt: str) -> None:
    handler = ParleyHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, ParleyHandler)] + [handler]
    root.setLevel(level)
    for name in _SERVER_LOGGERS:  # on the loggers, so the server's own handlers, if any, get it too
        server_logger = logging.getLogger(name)
        if not any(isinstance(f, RedactRequestTargets) for f in server_logger.filters):
            server_logger.addFilter(RedactRequestTargets())
    for noisy in ("engineio.server", "socketio.server", "aiosqlite", "sqlalchemy.engine.Engine"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
