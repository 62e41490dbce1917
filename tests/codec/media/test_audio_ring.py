"""The single-producer, single-consumer record ring: records come out whole,
in order, never overwritten, across every wrap of the data area; one that
does not fit is refused and loses nothing already written."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codec.media.audio.ring import HEADER_BYTES, ByteRing


def ring(data_bytes: int) -> ByteRing:
    return ByteRing(memoryview(bytearray(HEADER_BYTES + data_bytes)), reset=True)


def test_records_come_out_in_order_and_whole() -> None:
    r = ring(256)
    assert r.read() is None
    for record in (b"", b"a", b"hello world" * 3):
        assert r.write(record)
    assert [r.read(), r.read(), r.read(), r.read()] == [
        b"",
        b"a",
        b"hello world" * 3,
        None,
    ]
    assert r.used == 0


def test_a_full_ring_refuses_and_keeps_what_it_holds() -> None:
    r = ring(64)
    assert r.write(b"x" * 40)
    assert not r.write(b"y" * 30)
    assert not r.write(b"z" * 64)
    assert r.read() == b"x" * 40
    assert r.write(b"y" * 30)
    assert r.read() == b"y" * 30


def test_two_views_of_one_buffer_talk() -> None:
    shared = memoryview(bytearray(HEADER_BYTES + 128))
    writer = ByteRing(shared, reset=True)
    reader = ByteRing(shared)
    for n in range(100):
        assert writer.write(n.to_bytes(2, "little") * (n % 7))
        assert reader.read() == n.to_bytes(2, "little") * (n % 7)


def test_too_small_a_buffer_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        ByteRing(memoryview(bytearray(40)))


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(64, 200),
    steps=st.lists(
        st.one_of(st.binary(max_size=50), st.none()), min_size=1, max_size=300
    ),
)
def test_matches_a_queue_through_every_wrap(
    capacity: int, steps: list[bytes | None]
) -> None:
    r = ring(capacity)
    model: deque[bytes] = deque()
    for step in steps:
        if step is None:
            assert r.read() == (model.popleft() if model else None)
        elif r.write(step):
            model.append(step)
        else:
            # Refused only when it (with the skip to the start) does not fit.
            assert r.capacity - r.used < 2 * (len(step) + 4)
    while model:
        assert r.read() == model.popleft()
    assert r.read() is None
