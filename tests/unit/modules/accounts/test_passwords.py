"""The hash verified against for a login of an unknown user costs what a real user's hash costs."""

from __future__ import annotations

from app.modules.accounts.service import _DUMMY_HASH, _hasher


def test_the_unknown_user_hash_has_the_hasher_s_parameters() -> None:
    assert not _hasher.check_needs_rehash(_DUMMY_HASH), "hash it again with the current PasswordHasher"
    assert _hasher.verify(_DUMMY_HASH, "parley-no-such-user")
