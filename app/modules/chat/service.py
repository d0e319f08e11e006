"""The chat domain's queries and transactions, shared by the REST controller and the socket gateway.

Every state change commits before it returns; the caller hands its `ChatEvents` so that the events
go out only after the commit and are the same whichever path made the change. `ChatService` is
composed of one part per concern, all on the same session (`ChatStore`).
"""

from __future__ import annotations

from app.modules.chat.conversations import Conversations
from app.modules.chat.messaging import Messaging
from app.modules.chat.notifications import Notifications
from app.modules.chat.rows import Created, Mention, ReadState, Removal, Sent

__all__ = ["ChatService", "Created", "Mention", "ReadState", "Removal", "Sent"]


class ChatService(Messaging, Notifications, Conversations):
    """Every chat operation on one session: the one service handlers and controllers inject."""
