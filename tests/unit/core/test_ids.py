"""`RandomIds` hands out distinct version 4 UUIDs, across refills and across a fork."""

from __future__ import annotations

import os
import uuid

import pytest

from app.core.ids import IDS_PER_READ, RandomIds


def test_ids_are_version_4_of_the_rfc_variant() -> None:
    ids = RandomIds()
    for _ in range(IDS_PER_READ * 2):
        found = ids.next()
        assert found.version == 4
        assert found.variant == uuid.RFC_4122
        assert uuid.UUID(str(found)) == found


def test_ids_stay_distinct_across_refills() -> None:
    ids = RandomIds()
    drawn = [ids.next() for _ in range(IDS_PER_READ * 8 + 3)]
    assert len(set(drawn)) == len(drawn)


def test_random_bits_vary_in_every_position() -> None:
    """No bit but the version's and the variant's is fixed (a slicing mistake would fix a byte)."""
    ids = RandomIds()
    ones = 0
    zeros = 0
    for _ in range(IDS_PER_READ * 2):
        value = ids.next().int
        ones |= value
        zeros |= ~value
    fixed = (0xF000 << 64) | (0xC000 << 48)
    everything = (1 << 128) - 1
    assert ones & ~fixed & everything == everything & ~fixed
    assert zeros & ~fixed & everything == everything & ~fixed


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_draws_ids_of_its_own() -> None:
    ids = RandomIds()
    ids.next()  # the buffer now holds the parent's next ids
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its next id, then leave at once
        os.close(read_end)
        os.write(write_end, ids.next().bytes)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child = uuid.UUID(bytes=pipe.read())
    os.waitpid(pid, 0)
    parent = ids.next()
    assert child != parent
