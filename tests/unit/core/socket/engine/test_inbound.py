"""The one-step decoding of an event gives what python-socketio's decoder gives, and leaves every
other packet to it."""

from __future__ import annotations

import pytest
from socketio import packet

from app.core.socket import json as socket_json
from app.core.socket.engine.inbound import decode_event


class JsonPacket(packet.Packet):  # type: ignore[misc]
    json = socket_json


@pytest.mark.parametrize(
    "text",
    [
        '2["bench:ping",{"s":1,"m":"x-y"}]',
        '27["bench:ping",{"s":1}]',
        "2" + "9" * 100 + '["a"]',
        "2[]",
        '2["é",{"k":[1,2,{"z":null}]}]',
    ],
)
def test_an_event_decodes_as_python_socketio_decodes_it(text: str) -> None:
    fast = decode_event(text)
    full = JsonPacket(encoded_packet=text)

    assert fast is not None
    assert (fast.packet_type, fast.namespace, fast.id, fast.data) == (
        full.packet_type,
        full.namespace,
        full.id,
        full.data,
    )


@pytest.mark.parametrize(
    "text",
    [
        '0{"token":"t"}',
        '3["ok"]',
        '2/chat,1["a"]',
        '21-["a",{"_placeholder":true,"num":0}]',
        "2" + "9" * 101 + '["a"]',
        '2\u0663["a"]',
        "2",
        '2"a"',
    ],
)
def test_any_other_packet_is_left_to_python_socketio(text: str) -> None:
    assert decode_event(text) is None


def test_malformed_json_fails_as_in_python_socketio() -> None:
    with pytest.raises(ValueError):
        JsonPacket(encoded_packet='2["a",')
    with pytest.raises(ValueError):
        decode_event('2["a",')
