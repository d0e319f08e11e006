"""What `parley serve` asks of uvicorn: Parley's HTTP and websocket protocols, and permessage-deflate
only when SOCKET_WS_COMPRESSION turns it on."""

from __future__ import annotations

from app.config.settings import Settings
from app.core.http.server_protocol import HeadDeadlineProtocol
from app.core.http.websocket_protocol import FrameWritingProtocol
from app.serve.node import uvicorn_config


def test_compression_is_off_unless_the_setting_turns_it_on() -> None:
    default = uvicorn_config(Settings.from_env({}, env_file=None), app=None, host="127.0.0.1", port=8000)
    turned_on = uvicorn_config(
        Settings.from_env({"SOCKET_WS_COMPRESSION": "true"}, env_file=None),
        app=None,
        host="127.0.0.1",
        port=8000,
    )

    assert (default.http, default.ws) == (HeadDeadlineProtocol, FrameWritingProtocol)
    assert default.ws_per_message_deflate is False
    assert turned_on.ws_per_message_deflate is True
