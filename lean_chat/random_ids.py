"""Random ids from the kernel's generator, drawn a block at a time.

`os.urandom` lets go of the GIL for its system call; with the store's worker thread running, taking the GIL
back costs the event loop far more than the call (about 20 us a call, twice per stream). Drawing 4 KiB at once
makes that one call per 256 ids; the bytes are the same kernel randomness, handed out once each.
"""

from __future__ import annotations

import os
import threading

__all__ = ["random_bits", "random_hex", "uuid4_hex"]

_BLOCK = 4096


class _Draw:
    """A block of random bytes, handed out in slices, each slice once; drawn again after a fork."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.block = b""
        self.taken = 0

    def take(self, size: int) -> bytes:
        """`size` random bytes never handed out before."""
        with self.lock:
            start = self.taken
            if start + size > len(self.block):
                self.block, start = os.urandom(max(_BLOCK, size)), 0
            self.taken = start + size
            return self.block[start : start + size]

    def forget(self) -> None:
        """Drop the block (a forked child must not hand out its parent's bytes)."""
        self.block, self.taken = b"", 0
        self.lock = threading.Lock()


_draw = _Draw()
os.register_at_fork(after_in_child=_draw.forget)


def random_bits(bits: int) -> int:
    """A random integer of at most `bits` bits (as `secrets.randbits(bits)`)."""
    size = (bits + 7) // 8
    return int.from_bytes(_draw.take(size), "big") >> (size * 8 - bits)


def random_hex(size: int = 16) -> str:
    """`size` random bytes as hex (as `os.urandom(size).hex()`)."""
    return _draw.take(size).hex()


def uuid4_hex() -> str:
    """A random UUID (version 4) as 32 hex digits (as `uuid.uuid4().hex`)."""
    raw = bytearray(_draw.take(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return raw.hex()
