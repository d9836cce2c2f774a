"""Random ids drawn a block at a time: each byte handed out once, uuid4 form, a forked child drawing its own."""

from __future__ import annotations

import os
import uuid
import warnings

from lean_chat.random_ids import random_bits, random_hex, uuid4_hex


def test_uuid4_hex_ids_are_version_4_and_never_repeat_across_blocks() -> None:
    ids = [uuid4_hex() for _ in range(3000)]  # more than ten blocks of 4 KiB
    assert len(set(ids)) == len(ids)
    for value in ids:
        parsed = uuid.UUID(value)
        assert parsed.hex == value and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_random_hex_and_bits_have_the_sizes_asked_for() -> None:
    assert len(random_hex(16)) == 32
    assert len(random_hex(5000)) == 10000  # more than a block at once
    values = [random_bits(62) for _ in range(2000)]
    assert all(0 <= v < 2**62 for v in values)
    assert max(values) >= 2**60  # the top bits are used, not only the low ones
    assert len(set(values)) == len(values)


def test_a_forked_child_does_not_hand_out_its_parents_bytes() -> None:
    random_hex(16)  # a block is drawn and partly handed out in the parent
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (Python 3.12+)
        child = os.fork()
    if child == 0:
        try:
            os.write(write, "".join(random_hex(16) for _ in range(4)).encode("ascii"))
        finally:
            os._exit(0)
    os.close(write)
    in_child = os.read(read, 4096).decode("ascii")
    os.close(read)
    os.waitpid(child, 0)
    in_parent = "".join(random_hex(16) for _ in range(4))
    assert len(in_child) == 128 and in_child != in_parent
