"""Random (version 4) UUIDs for rows written on the hot path, from one `os.urandom` read per 256.

`uuid.uuid4()` reads the kernel's random source once per id, and that call lets go of the GIL: with a
database thread beside the event loop (aiosqlite), each id could leave the loop waiting for the GIL
for up to the interpreter's switch interval. The ids are as random as uuid4's, from the same source;
a process forked after some were drawn reads afresh, so parent and child never hand out the same ones.
"""

from __future__ import annotations

import os
import uuid

IDS_PER_READ = 256
_VERSION_MASK = ~(0xF000 << 64) & ~(0xC000 << 48)
_VERSION_BITS = (0x4000 << 64) | (0x8000 << 48)


class RandomIds:
    """Hands out version 4 UUIDs from a buffer of random bytes, refilled every `IDS_PER_READ` ids."""

    def __init__(self) -> None:
        self._buffer = b""
        self._offset = 0
        os.register_at_fork(after_in_child=self._forget)

    def next(self) -> uuid.UUID:
        """A fresh version 4 UUID."""
        if self._offset >= len(self._buffer):
            self._buffer = os.urandom(16 * IDS_PER_READ)
            self._offset = 0
        start = self._offset
        self._offset = start + 16
        value = int.from_bytes(self._buffer[start : start + 16], "big") & _VERSION_MASK | _VERSION_BITS
        return uuid.UUID(int=value)

    def _forget(self) -> None:
        """In a forked child: drop the bytes the parent may still hand out."""
        self._buffer = b""
        self._offset = 0


random_ids = RandomIds()
"""The process's one source: `random_ids.next()` where `uuid.uuid4()` would do."""
