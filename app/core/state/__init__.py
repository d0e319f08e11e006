"""Ephemeral state (presence, rate limits, cross-node signals): in process or Redis."""

from app.config.settings import Settings
from app.core.state.backend import StateBackend
from app.core.state.memory import MemoryStateBackend
from app.core.state.redis import RedisStateBackend

__all__ = ["MemoryStateBackend", "RedisStateBackend", "StateBackend", "create_state_backend"]


def create_state_backend(settings: Settings, prefix: str = "parley:") -> StateBackend:
    """Redis when REDIS_URL is set (shared by every node), otherwise this process's memory."""
    if settings.redis_url:
        return RedisStateBackend(settings.redis_url, prefix=prefix)
    return MemoryStateBackend()
