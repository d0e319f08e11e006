"""Chat: conversations, participants, messages, sync and read state.

What other modules may use of it is exported here: who shares a conversation with whom
(`Membership`, provided in `AppContext`), the events that end what such sharing allowed, and the
rooms of the sockets viewing a conversation (`ACTIVE_ROOMS`).
"""

from app.modules.chat.declarations import ACTIVE_ROOMS
from app.modules.chat.membership import ConversationBlurred, Membership, MembershipEnded

__all__ = ["ACTIVE_ROOMS", "ConversationBlurred", "Membership", "MembershipEnded"]
