"""The application context: the singletons every module may depend on, built once per app."""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from app.config.settings import Settings
from app.core.db import Database, UnitOfWork, shared_unit_of_work, unit_of_work
from app.core.event_bus import EventBus
from app.core.metrics import Metrics
from app.core.security.tokens import TokenCodec
from app.core.state import StateBackend

if TYPE_CHECKING:
    from app.core.socket.hub import SocketHub

T = TypeVar("T")


class AppContext:
    """A plain class on purpose: Litestar passes it to handlers as is, without validating it."""

    def __init__(self, settings: Settings, db: Database, state: StateBackend, tokens: TokenCodec) -> None:
        self.settings = settings
        self.db = db
        self.state = state
        self.tokens = tokens
        self.events = EventBus()
        self.metrics = Metrics()
        self.node_id = uuid.uuid4().hex
        self._hub: SocketHub | None = None
        self._providers: dict[type[Any], Any] = {}

    @property
    def hub(self) -> SocketHub:
        """The socket layer: emit to rooms and move sockets between rooms on every node."""
        if self._hub is None:
            raise RuntimeError("the socket hub is not attached yet")
        return self._hub

    def attach_hub(self, hub: SocketHub) -> None:
        self._hub = hub

    def provide(self, key: type[T], instance: T) -> None:
        """Register a singleton other modules may depend on by its type."""
        if key in self._providers:
            raise RuntimeError(f"{key.__qualname__} is provided twice")
        self._providers[key] = instance

    def get(self, key: type[T]) -> T:
        try:
            return self._providers[key]  # type: ignore[no-any-return]
        except KeyError:
            raise RuntimeError(f"no module provides {key.__qualname__}") from None

    def unit_of_work(self) -> UnitOfWork:
        return unit_of_work(self.db)

    def shared_unit_of_work(self, *, read_only: bool = False) -> AbstractAsyncContextManager[None]:
        """Inside, this task's units of work share one session (see `shared_unit_of_work`)."""
        return shared_unit_of_work(self.db, read_only=read_only)
