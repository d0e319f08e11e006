"""The gateway's own client events: rooms and token refresh (the core declares what it emits)."""

from __future__ import annotations

from app.core.errors import AppError, ErrorCode
from app.core.security.identity import Authenticator
from app.core.socket import Gateway, SocketContext, ws_event, ws_response
from app.core.socket.protocol import RoomAck, RoomIn
from app.core.socket.rooms import RoomManager, identity_rooms
from app.core.socket.runtime import SocketRuntime
from app.modules.realtime.schemas import AuthRefreshIn, RefreshAck


class RealtimeGateway(Gateway):
    @ws_event(
        "room:join",
        "Join a room. Its prefix's hook decides (`user:` own id, `session:` own session, "
        "`broadcast:` anyone, modules add more); an unknown prefix is refused.",
        category="rooms",
        examples=[{"room": "broadcast:all"}],
        errors=[
            ErrorCode.VALIDATION_ERROR,
            ErrorCode.FORBIDDEN,
            ErrorCode.RATE_LIMITED,
            ErrorCode.UNAVAILABLE,
        ],
    )
    @ws_response("room:join", RoomAck)
    async def join(self, client: SocketContext, payload: RoomIn, rooms: RoomManager) -> RoomAck:
        await rooms.authorize(client.user_id, payload.room)
        await client.join(payload.room)
        return RoomAck(room=payload.room)

    @ws_event(
        "room:leave",
        "Leave a room (leaving one you are not in succeeds too). Your identity rooms, `user:{userId}` "
        "and `session:{sessionId}`, are held for the socket's whole life: leaving them is refused.",
        category="rooms",
        examples=[{"room": "broadcast:all"}],
        errors=[ErrorCode.VALIDATION_ERROR, ErrorCode.FORBIDDEN],
    )
    @ws_response("room:leave", RoomAck)
    async def leave(self, client: SocketContext, payload: RoomIn) -> RoomAck:
        if payload.room in identity_rooms(client.identity):
            raise AppError(
                ErrorCode.FORBIDDEN,
                f"{payload.room} is an identity room: every socket of its user or session stays in it",
            )
        await client.leave(payload.room)
        return RoomAck(room=payload.room)

    @ws_event(
        "auth:refresh",
        "Hand the socket a fresh access token before the current one expires; it must belong to the "
        "same user and session. Without it the socket gets `force_logout` (`token_expired`) at expiry.",
        category="session",
        examples=[{"token": "eyJhbGciOiJIUzI1NiJ9.e30.signature"}],
        errors=[
            ErrorCode.UNAUTHORIZED,
            ErrorCode.TOKEN_EXPIRED,
            ErrorCode.SESSION_REVOKED,
            ErrorCode.FORBIDDEN,
        ],
    )
    @ws_response("auth:refresh", RefreshAck)
    async def refresh(
        self,
        client: SocketContext,
        payload: AuthRefreshIn,
        authenticator: Authenticator,
        runtime: SocketRuntime,
    ) -> RefreshAck:
        identity = await authenticator.authenticate(payload.token)
        if identity.user_id != client.user_id or identity.session_id != client.session_id:
            raise AppError(ErrorCode.FORBIDDEN, "The token belongs to another user or session")
        runtime.refresh(client.sid, identity)
        return RefreshAck(expires_at=identity.expires_at)
