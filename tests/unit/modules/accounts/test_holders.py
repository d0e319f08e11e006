"""What a token check keeps in memory: users for good, live sessions until they end, expire or age."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest

from app.modules.accounts import holders
from app.modules.accounts.holders import LiveSessions, Recent, TokenHolders
from app.modules.accounts.sessions import TokenHolder

HOUR = dt.timedelta(hours=1)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def test_recent_lets_the_least_recently_used_go() -> None:
    kept: Recent[str, int] = Recent(size=2)
    kept.put("a", 1)
    kept.put("b", 2)
    assert kept.get("a") == 1
    kept.put("c", 3)
    assert (kept.get("a"), kept.get("b"), kept.get("c")) == (1, None, 3)


def test_token_holders_are_kept_by_user_id() -> None:
    kept = TokenHolders()
    holder = TokenHolder(uuid.uuid4(), "alice", "Alice", is_admin=False)
    kept.keep(holder)
    assert kept.get(holder.user_id) is holder
    assert kept.get(uuid.uuid4()) is None


def test_a_live_session_is_kept_until_dropped() -> None:
    live, user_id = LiveSessions(), uuid.uuid4()
    live.keep("s1", user_id, now() + HOUR, live.drops)
    live.keep("s2", user_id, now() + HOUR, live.drops)
    assert live.owner("s1", now()) == user_id
    live.drop(["s1"])
    assert (live.owner("s1", now()), live.owner("s2", now())) == (None, user_id)


def test_a_session_past_its_expiry_is_not_taken_as_live() -> None:
    live = LiveSessions()
    live.keep("s1", uuid.uuid4(), now() + HOUR, live.drops)
    assert live.owner("s1", now() + 2 * HOUR) is None


def test_a_session_seen_too_long_ago_is_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    live, user_id = LiveSessions(), uuid.uuid4()
    live.keep("s1", user_id, now() + HOUR, live.drops)
    later = time.monotonic() + holders.TRUSTED_FOR + 1
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert live.owner("s1", now()) is None


def test_what_was_read_while_sessions_were_dropped_is_not_kept() -> None:
    live = LiveSessions()
    before = live.drops
    live.drop(["other"])
    live.keep("s1", uuid.uuid4(), now() + HOUR, before)
    assert live.owner("s1", now()) is None
