"""Chat: conversations, participants, messages, sync and read state.

What other modules may use of it is exported here: who shares a conversation with whom
(`Membership`, provided in `AppContext`) and the events that end what such sharing allowed.
"""

from app.modules.chat.membership import ConversationBlurred, Membership, MembershipEnded

__all__ = ["ConversationBlurred", "Membership", "MembershipEnded"]
