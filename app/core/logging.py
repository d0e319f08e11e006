"""Logging set-up: one line per event, text or JSON."""

from __future__ import annotations

import datetime as dt
import logging
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


class ParleyHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one handler Parley installs on the root logger; others (a test's capture) are left alone."""


def configure_logging(level: str, fmt: str) -> None:
    handler = ParleyHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, ParleyHandler)] + [handler]
    root.setLevel(level)
    for noisy in ("engineio.server", "socketio.server", "aiosqlite", "sqlalchemy.engine.Engine"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
