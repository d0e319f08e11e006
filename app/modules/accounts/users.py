"""`GET /api/users?username=…`: find a user to start a conversation with."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter

from app.core.errors import not_found
from app.core.http.envelope import Envelope, ok
from app.core.security.identity import Identity
from app.core.text import USERNAME
from app.modules.accounts.auth import user_out
from app.modules.accounts.models import USERNAME_MAX
from app.modules.accounts.schemas import UserOut
from app.modules.accounts.service import UserService

LOOKUP = "exact username, in any case"


class UsersController(Controller):
    path = "/api/users"
    tags = ["users"]

    @get("/", opt={"rate_limited": True}, summary="Find a user by exact username")
    async def lookup(
        self,
        identity: Identity,  # noqa: ARG002 - signed-in users only
        users_service: UserService,
        username: Annotated[
            str, Parameter(min_length=1, max_length=USERNAME_MAX, pattern=USERNAME, description=LOOKUP)
        ],
    ) -> Envelope[UserOut]:
        """The user with this username (`{id, username, display_name}` only), or 404.

        An exact match, never a search: it finds someone whose name you know without listing anyone.
        Rate limited like a write (`RATE_LIMIT_REST`), so names cannot be guessed in bulk.
        """
        user = await users_service.by_username(username)
        if user is None:
            raise not_found("User")
        return ok(user_out(user))
