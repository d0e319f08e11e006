"""An inbound Socket.IO event decoded in one step, for the packet nearly every message is.

python-socketio's decoder (`socketio.packet.Packet.decode`) walks a packet character by character
for attachments, a namespace and an ack id before it decodes the JSON. An event on `/` whose JSON
follows its type or its ack id at once (`2[…]`, `2<id>[…]`: what every client sends for `emit`)
is read here by one match instead, with the same result; any other packet is left to that decoder.
"""

from __future__ import annotations

import re
from typing import Any

from socketio import packet

from app.core.socket import json as socket_json

_EVENT = re.compile(r"2([0-9]{0,100})\[")
"""An EVENT with at most the 100 ack-id digits python-socketio accepts; ASCII digits only (its
decoder takes any Unicode digit: such packets go to it)."""


class EventPacket:
    """What the server reads of a decoded packet: the fields of `socketio.packet.Packet`."""

    __slots__ = ("data", "id")

    packet_type = packet.EVENT
    namespace = None

    def __init__(self, data: Any, ack_id: int | None) -> None:
        self.data = data
        self.id = ack_id


def decode_event(text: str) -> EventPacket | None:
    """The event `text` holds, or None if it is not of that common shape; raises as the full
    decoder does when its JSON is malformed."""
    match = _EVENT.match(text)
    if match is None:
        return None
    digits = match.group(1)
    return EventPacket(socket_json.loads(text[match.end() - 1 :]), int(digits) if digits else None)
