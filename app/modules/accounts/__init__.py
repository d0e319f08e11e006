"""Accounts: users and login sessions. What other modules may use of it is exported here."""

from app.modules.accounts.models import User

__all__ = ["User"]
