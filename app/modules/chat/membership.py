"""Who shares a conversation with whom: provided by this module, used by presence and typing.

Other modules depend on this protocol (exported by `app.modules.chat`), not on how chat stores
participants, so either can change alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class Membership(Protocol):
    async def is_participant(self, conversation_id: str, user_id: str) -> bool:
        """True if `user_id` is a participant of `conversation_id` (False for unknown ids)."""

    async def contacts_among(self, user_id: str, candidates: Sequence[str]) -> set[str]:
        """The candidates who share at least one conversation with `user_id` (one query)."""


@dataclass(frozen=True, slots=True)
class ConversationBlurred:
    """A socket stopped viewing a conversation (`conversation:blur`); its typing indicator ends."""

    sid: str
    user_id: str
    conversation_id: str


@dataclass(frozen=True, slots=True)
class MembershipEnded:
    """These users are no longer participants of a conversation (they left, were removed, or it was
    deleted): what being in it allowed, such as following each other's presence, may end with it."""

    conversation_id: str
    user_ids: tuple[str, ...]
