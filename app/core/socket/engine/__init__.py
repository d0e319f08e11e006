"""Parley's subclasses of python-socketio and python-engineio, and everything that reaches into them.

These are the only files that override or call the private methods of those libraries; both are
pinned below their next major version in pyproject.toml, and the tests of each override
(`tests/unit/core/socket/engine/test_overrides.py`, the Redis manager's in
`tests/integration/core/socket/engine/test_redis_manager.py`) fail once an overridden method is gone
or called differently upstream.

Private methods overridden (upstream class and method, then why):

- `AsyncServer._engineio_server_class` (python-socketio; `server.TransportServer`, which
  `server.ParleyServer` extends): the Engine.IO server is `transport.ParleyEngine`.
- `AsyncServer._handle_eio_connect` (`server.ParleyServer`): a transport gets a deadline to join
  `/`, and the connect request's body reader is dropped from its environ.
- `AsyncServer._handle_eio_disconnect` (`server.ParleyServer`): forgets the transport's join
  deadline and its count of malformed packets before python-socketio's handling.
- `AsyncServer._handle_connect` (`server.ParleyServer`): a second CONNECT is refused as malformed;
  a connect admitted after its transport closed is undone; a refused long-polling transport is
  closed behind its `connect_error`; an admitted socket ends its deadline, drops its request
  headers and is handed to the runtime.
- `AsyncServer._handle_eio_message` (`server.ParleyServer`): every packet is decoded defensively
  (binary, oversized, undecodable and unexpected packets are answered or counted, never raised)
  and events and acks are routed to the runtime.
- `AsyncServer._handle_connect` (python-engineio; `transport.ParleyEngine`): Engine.IO's handshake,
  creating a `ParleySocket` and setting no cookie.
- `AsyncPubSubManager._publish` (`managers.RedisManager`): publishes on the channels a message
  concerns (`channels.py`: each room's, a node's own, or the shared one), logging an outage once.
- `AsyncPubSubManager._handle_emit` (`managers.RedisManager`): the second copy of an emit to several
  rooms (one copy per room's channel) is not delivered again.
- `AsyncRedisManager._listen` (`managers.RedisManager`, on python-socketio's `AsyncPubSubManager`):
  reads this node's channels and applies the room operations other nodes publish instead of handing
  them to python-socketio.

Public methods of python-engineio's internal classes are replaced as well (`ParleyEngine`:
`handle_request`, `create_queue`, `generate_id`; `ParleySocket`: `schedule_ping`, `receive`,
`handle_get_request`, `close`; `EncodedMessage.encode`; `FanOutManager.emit`; `RedisManager`:
`initialize`, `enter_room`, `basic_enter_room`, `basic_leave_room`, which keep the node's channels in
line with its rooms), and these private
members are called: `AsyncServer._handle_disconnect` (python-socketio), and of python-engineio's
`AsyncServer`: `_async`, `_bad_request`, `_cors_allowed_origins`, `_make_response`, `_ok`,
`_service_task`, `_trigger_event`, `_unauthorized`, `_upgrades`.
"""
