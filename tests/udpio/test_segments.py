"""How queued datagrams are grouped into GSO sends, and GRO buffers cut back."""

from hypothesis import given
from hypothesis import strategies as st

from udpio import MAX_GSO_BYTES, plan_batches, split

A = ("127.0.0.1", 1000)
B = ("127.0.0.1", 2000)


def test_equal_datagrams_to_one_address_make_one_batch_ending_with_a_shorter_one():
    queued = [(bytes([i]) * 1200, A) for i in range(5)] + [(b"x" * 300, A)]
    (batch,) = plan_batches(queued, gso=True)
    assert batch.addr == A and batch.segment_size == 1200
    assert batch.datagrams == [data for data, _ in queued]


def test_nothing_follows_a_shorter_datagram_and_nothing_larger_joins():
    queued = [(b"a" * 1200, A), (b"b" * 500, A), (b"c" * 500, A), (b"d" * 1300, A)]
    batches = plan_batches(queued, gso=True)
    assert [(b.segment_size, len(b.datagrams)) for b in batches] == [
        (1200, 2),
        (500, 1),
        (1300, 1),
    ]


def test_addresses_are_batched_apart_keeping_each_ones_order():
    queued = [(b"%d" % i * 100, A if i % 2 else B) for i in range(10)]
    batches = plan_batches(queued, gso=True)
    assert {b.addr for b in batches} == {A, B}
    for batch in batches:
        wanted = [d for d, addr in queued if addr == batch.addr]
        assert batch.datagrams == wanted


def test_a_batch_stays_within_the_segment_and_byte_limits():
    queued = [(b"z" * 1400, A)] * 200
    batches = plan_batches(queued, gso=True, max_segments=64)
    assert sum(len(b.datagrams) for b in batches) == 200
    for batch in batches:
        assert len(batch.datagrams) <= 64
        assert sum(map(len, batch.datagrams)) <= MAX_GSO_BYTES


def test_without_gso_every_datagram_is_sent_alone():
    queued = [(b"q" * 1200, A)] * 3
    assert [len(b.datagrams) for b in plan_batches(queued, gso=False)] == [1, 1, 1]


@given(
    st.lists(
        st.tuples(st.integers(1, 1500), st.sampled_from([A, B])),
        max_size=120,
    )
)
def test_any_queue_is_planned_into_valid_batches_in_order(items):
    queued = [(bytes([i % 256]) * size, addr) for i, (size, addr) in enumerate(items)]
    batches = plan_batches(queued, gso=True)
    for addr in (A, B):
        sent = [d for b in batches if b.addr == addr for d in b.datagrams]
        assert sent == [d for d, a in queued if a == addr]
    for batch in batches:
        sizes = list(map(len, batch.datagrams))
        assert sizes[0] == batch.segment_size
        assert all(size == batch.segment_size for size in sizes[:-1])
        assert sizes[-1] <= batch.segment_size
        assert sum(sizes) <= MAX_GSO_BYTES


def test_split_cuts_a_coalesced_buffer_back_into_its_datagrams():
    parts = [bytes([i]) * 1200 for i in range(3)] + [b"end"]
    assert list(split(b"".join(parts), 1200)) == parts
    assert list(split(b"single", 0)) == [b"single"]
    assert list(split(b"short", 1200)) == [b"short"]
