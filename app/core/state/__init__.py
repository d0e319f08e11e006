"""Ephemeral state (presence, rate limits, cross-node signals): in process or Redis."""

from app.core.state.backend import StateBackend, create_state_backend
from app.core.state.memory import MemoryStateBackend
from app.core.state.redis import RedisStateBackend

__all__ = ["MemoryStateBackend", "RedisStateBackend", "StateBackend", "create_state_backend"]
