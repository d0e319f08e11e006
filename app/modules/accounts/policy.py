"""What a new account must satisfy beyond its schema: a name that looks like no one else's, a password
that is not a common one.

Look-alike names are caught with the skeleton of Unicode Technical Standard #39 ("confusable
detection"), computed by ICU: two names whose skeletons are equal display alike (`alice`, `aIice`,
`al1ce` with a capital I or a one … ). Usernames are unique regardless of case, so the key is the
skeleton of the lower-cased skeleton: the first pass maps `I` to `l` before lower-casing could turn
it into an `i`, the second folds what lower-casing produced.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import icu

from app.core.errors import validation_error

_checker = icu.SpoofChecker()
_COMMON_PASSWORDS = "common_passwords.txt"


def username_skeleton(username: str) -> str:
    """The key two look-alike usernames share (UTS #39 skeleton, case folded)."""
    first = _checker.getSkeleton(0, username)
    return str(_checker.getSkeleton(0, first.lower()))


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords (lower case), read once."""
    text = resources.files(__package__).joinpath(_COMMON_PASSWORDS).read_text(encoding="utf-8")
    return frozenset(line.lower() for line in text.splitlines() if line and not line.startswith("#"))


def check_password(password: str, username: str) -> None:
    """VALIDATION_ERROR on `password` for a common password, one built on the username, or one character."""
    lowered = password.lower()
    if lowered in common_passwords():
        raise validation_error("password", "is one of the most common passwords; choose another")
    if username.lower() in lowered:
        raise validation_error("password", "must not contain the username")
    if len(set(password)) == 1:
        raise validation_error("password", "must not be one character repeated")
