"""Closing Engine.IO transports so that clients reconnect, to another node if this one is gone.

A Socket.IO DISCONNECT tells a client the server ended its session on purpose, and so does
Engine.IO's CLOSE packet for python-socketio: after either, the client stays disconnected. Ending
the transport itself is what clients treat as a network fault and recover from by reconnecting:

- a websocket gets a close frame, after the packets already queued for it (the acks of its last
  events), and nothing else;
- a long-polling client first fetches everything still queued for it (a NOOP ends its pending
  poll), then its session is dropped, so its next request is answered 400 and it reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from engineio import packet as eio_packet

MAX_SWEEPS = 3
"""Transports opened while the first ones close are closed by a later sweep."""


async def close_transports(engine: Any, deadline: float) -> None:
    """Close every transport of `engine`; a polling client gets until `deadline` to fetch its packets."""
    reason = engine.reason.SERVER_DISCONNECT
    for _ in range(MAX_SWEEPS):
        transports = [transport for transport in engine.sockets.values() if not transport.closed]
        if not transports:
            return
        await asyncio.gather(*(close_transport(transport, reason, deadline) for transport in transports))


async def close_transport(transport: Any, reason: Any, deadline: float) -> None:
    """End one transport, then run the disconnect handlers of its socket."""
    if transport.upgraded:
        # The close frame goes out after what is queued. Events the client sent meanwhile are still
        # read, and answered UNAVAILABLE by the draining runtime, until the socket is closed below.
        transport.queue.put_nowait(None)
        await transport.close(wait=False, abort=True, reason=reason)
        return
    transport.queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))
    timeout = max(0.0, deadline - asyncio.get_running_loop().time())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(transport.queue.join(), timeout)
    await transport.close(wait=False, abort=True, reason=reason)
    transport.queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))  # ends a poll that came in meanwhile
