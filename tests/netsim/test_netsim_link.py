"""The link model, stage by stage, on a virtual clock with exact times."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim import GilbertElliott, Link, LinkConfig, ParameterError, ScheduleStep, Trace
from netsim.trace import TraceCursor


def packet(sequence: int, size: int = 100) -> bytes:
    return sequence.to_bytes(4, "big") + bytes(size - 4)


def sequence_of(data: bytes) -> int:
    return int.from_bytes(data[:4], "big")


def drain(link: Link[bytes], until: float | None = None) -> list[tuple[float, bytes]]:
    """Step the clock through every wake-up (up to ``until``); return the
    (time, packet) deliveries."""
    delivered = []
    while (wakeup := link.next_wakeup()) is not None and (
        until is None or wakeup <= until
    ):
        delivered += [(wakeup, p) for p in link.receive(wakeup)]
    return delivered


def run(
    link: Link[bytes], sends: list[tuple[float, bytes]]
) -> list[tuple[float, bytes]]:
    """Send each packet at its time, collecting deliveries at their exact times."""
    delivered = []
    for time, data in sends:
        delivered += drain(link, until=time)
        link.send(data, time)
    return delivered + drain(link)


def test_default_link_passes_packets_at_once() -> None:
    link: Link[bytes] = Link()
    link.send(b"hello", 1.0)
    assert link.next_wakeup() == 1.0
    assert link.receive(1.0) == [b"hello"]
    assert link.next_wakeup() is None


def test_constant_delay_is_exact() -> None:
    link: Link[bytes] = Link(LinkConfig(delay_s=0.04), start=10.0)
    link.send(b"a", 10.0)
    link.send(b"b", 10.005)
    assert link.receive(10.039) == []
    assert link.next_wakeup() == pytest.approx(10.04)
    assert drain(link) == [(pytest.approx(10.04), b"a"), (pytest.approx(10.045), b"b")]


def test_rate_serializes_each_packet_after_the_previous() -> None:
    # 1000 bytes at 1 Mbit/s take 8 ms on the wire.
    link: Link[bytes] = Link(LinkConfig(rate_bps=1e6, delay_s=0.01))
    for sequence in range(3):
        link.send(packet(sequence, 1000), 0.0)
    times = [time for time, _ in drain(link)]
    assert times == pytest.approx([0.018, 0.026, 0.034])
    stats = link.stats
    assert stats.max_queued_packets == 2
    assert stats.queue_delay_max_s == pytest.approx(0.016)
    assert stats.queue_delay_mean_s == pytest.approx(0.008)


def test_queue_packet_limit_drops_the_tail() -> None:
    link: Link[bytes] = Link(LinkConfig(rate_bps=1e6, queue_packets=2))
    for sequence in range(5):
        link.send(packet(sequence, 1000), 0.0)
    # One on the wire, two waiting, two dropped.
    assert [sequence_of(p) for _, p in drain(link)] == [0, 1, 2]
    assert link.stats.dropped_queue == 2


def test_queue_byte_limit() -> None:
    config = LinkConfig(rate_bps=1e6, queue_packets=None, queue_bytes=2500)
    link: Link[bytes] = Link(config)
    for sequence in range(5):
        link.send(packet(sequence, 1000), 0.0)
    assert link.stats.queued_bytes == 2000
    assert link.stats.dropped_queue == 2


def test_queue_delay_limit_uses_the_current_rate() -> None:
    # 1000-byte packets at 1 Mbit/s: 8 ms each; a 20 ms limit admits a packet while
    # at most 20 ms of bytes are ahead of it.
    config = LinkConfig(rate_bps=1e6, queue_packets=None, queue_delay_s=0.02)
    link: Link[bytes] = Link(config)
    for sequence in range(6):
        link.send(packet(sequence, 1000), 0.0)
    # Ahead of packet n: 8 ms on the wire + 8 ms per waiting packet.
    assert link.stats.dropped_queue == 3
    assert link.stats.queue_delay_max_s <= 0.02


def test_blackhole_drops_arrivals_but_not_packets_inside() -> None:
    link: Link[bytes] = Link(LinkConfig(delay_s=0.1))
    link.send(b"before", 0.0)
    link.update(0.05, blackhole=True)
    link.send(b"during", 0.06)
    link.update(0.07, blackhole=False)
    link.send(b"after", 0.08)
    assert [p for _, p in drain(link)] == [b"before", b"after"]
    assert link.stats.dropped_blackhole == 1


def test_duplication_sends_two_copies() -> None:
    link: Link[bytes] = Link(LinkConfig(duplicate=1.0))
    link.send(b"x", 0.0)
    assert link.receive(0.0) == [b"x", b"x"]
    assert link.stats.duplicated == 1


def test_loss_all_and_nothing() -> None:
    link: Link[bytes] = Link(LinkConfig(loss=1.0))
    link.send(b"x", 0.0)
    assert drain(link) == []
    assert link.stats.dropped_loss == 1


def test_gilbert_elliott_follows_netem_state_machine() -> None:
    # p = 1: the first packet (good state) passes and moves the chain to bad; r = 0
    # keeps it there; 1-h = 1 loses everything in the bad state.
    config = LinkConfig(gilbert_elliott=GilbertElliott(p=1.0, r=0.0))
    link: Link[bytes] = Link(config)
    for sequence in range(4):
        link.send(packet(sequence), 0.0)
    assert [sequence_of(p) for p in link.receive(0.0)] == [0]
    assert link.stats.dropped_loss == 3


def test_reorder_lets_packets_overtake_the_delay_line() -> None:
    link: Link[bytes] = Link(LinkConfig(delay_s=0.05, reorder=1.0))
    link.send(b"x", 0.0)
    assert link.receive(0.0) == [b"x"]
    assert link.stats.reordered == 1


def test_keep_order_holds_packets_behind_slower_ones() -> None:
    config = LinkConfig(delay_s=0.05, jitter_s=0.04)
    link: Link[bytes] = Link(config, seed=3)
    sends = [(sequence * 0.001, packet(sequence)) for sequence in range(500)]
    order = [sequence_of(p) for _, p in run(link, sends)]
    assert order == sorted(order)


def test_jitter_reorders_when_asked_to() -> None:
    config = LinkConfig(delay_s=0.05, jitter_s=0.04, keep_order=False)
    link: Link[bytes] = Link(config, seed=3)
    sends = [(sequence * 0.001, packet(sequence)) for sequence in range(500)]
    order = [sequence_of(p) for _, p in run(link, sends)]
    assert sorted(order) == list(range(500))
    assert order != sorted(order)


@pytest.mark.parametrize("distribution", ["uniform", "normal", "pareto"])
def test_jitter_stays_within_netem_table_bounds(distribution: str) -> None:
    config = LinkConfig(
        delay_s=0.05,
        jitter_s=0.01,
        jitter_distribution=distribution,  # type: ignore[arg-type]
        keep_order=False,
    )
    link: Link[bytes] = Link(config, seed=1)
    sends = [(sequence * 0.001, packet(sequence)) for sequence in range(2000)]
    delays = [time - sequence_of(p) * 0.001 for time, p in run(link, sends)]
    limit = {"uniform": 0.01, "normal": 0.04, "pareto": 0.04}[distribution]
    assert min(delays) >= 0.05 - limit - 1e-9
    assert max(delays) <= 0.05 + limit + 1e-9


def test_same_seed_same_fate_different_seed_different_fate() -> None:
    config = LinkConfig(
        delay_s=0.02, jitter_s=0.01, loss=0.1, duplicate=0.05, reorder=0.05
    )

    def deliveries(seed: int) -> list[tuple[float, bytes]]:
        sends = [(sequence * 0.002, packet(sequence)) for sequence in range(300)]
        return run(Link(config, seed=seed), sends)

    assert deliveries(7) == deliveries(7)
    assert deliveries(7) != deliveries(8)


def test_schedule_changes_parameters_at_their_time() -> None:
    schedule = [ScheduleStep(1.0, {"delay_s": 0.2}), ScheduleStep(2.0, {"loss": 1.0})]
    link: Link[bytes] = Link(LinkConfig(delay_s=0.1), start=100.0, schedule=schedule)
    delivered = run(link, [(100.5, b"a"), (101.5, b"b"), (102.5, b"c")])
    assert delivered == [(pytest.approx(100.6), b"a"), (pytest.approx(101.7), b"b")]
    assert link.config.loss == 1.0


def test_rate_change_applies_from_the_next_packet_on_the_wire() -> None:
    # 1000 bytes: 8 ms at 1 Mbit/s, 4 ms at 2 Mbit/s. The step at 10 ms falls while
    # the second packet is on the wire; the third uses the new rate.
    schedule = [ScheduleStep(0.010, {"rate_bps": 2e6})]
    link: Link[bytes] = Link(LinkConfig(rate_bps=1e6), schedule=schedule)
    for sequence in range(3):
        link.send(packet(sequence, 1000), 0.0)
    assert [time for time, _ in drain(link)] == pytest.approx([0.008, 0.016, 0.020])


def test_invalid_schedule_is_refused_up_front() -> None:
    schedule = [ScheduleStep(5.0, {"reorder": 0.1})]
    with pytest.raises(ParameterError, match="schedule step at 5s: reorder"):
        Link(LinkConfig(), schedule=schedule)


def test_update_validates_before_changing_anything() -> None:
    link: Link[bytes] = Link(LinkConfig(delay_s=0.1))
    with pytest.raises(ParameterError):
        link.update(1.0, loss=2.0)
    assert link.config == LinkConfig(delay_s=0.1)


def test_update_that_would_break_a_later_schedule_step_is_refused() -> None:
    schedule = [ScheduleStep(5.0, {"reorder": 0.1})]
    link: Link[bytes] = Link(LinkConfig(delay_s=0.1), schedule=schedule)
    with pytest.raises(ParameterError, match="schedule step at 5s: reorder"):
        link.update(1.0, delay_s=0.0)
    assert link.config.delay_s == 0.1


def test_time_must_not_go_backwards() -> None:
    link: Link[bytes] = Link()
    link.send(b"x", 5.0)
    with pytest.raises(ValueError, match="backwards"):
        link.receive(4.0)


def test_trace_opportunities_carry_1500_bytes_each() -> None:
    cursor = TraceCursor(Trace((1, 1, 3)), origin=0.0)
    # Two 500-byte packets share the opportunity at 1 ms.
    assert cursor.transmit(500, 0.0) == (0.001, 0.001)
    assert cursor.transmit(500, 0.0) == (0.001, 0.001)
    # A 1500-byte packet uses the rest (500 bytes) and the second at 1 ms.
    assert cursor.transmit(1500, 0.0) == (0.001, 0.001)
    # 3000 bytes: the 500 left at 1 ms, 1500 at 3 ms, and the trace repeats every
    # 3 ms, so the last 1000 go at 4 ms.
    assert cursor.transmit(3000, 0.0) == pytest.approx((0.001, 0.004))


def test_trace_skips_opportunities_before_the_packet_is_ready() -> None:
    cursor = TraceCursor(Trace((1, 2, 3, 4)), origin=10.0)
    assert cursor.transmit(100, 10.0025) == pytest.approx((10.003, 10.003))
    # Leftover bytes of an opportunity already past cannot be used.
    assert cursor.transmit(100, 10.0035) == pytest.approx((10.004, 10.004))
    # Far in the future: found by bisection, not by walking the trace.
    assert cursor.transmit(100, 10.0 + 4000.0005) == pytest.approx((4010.001, 4010.001))


def test_trace_drives_the_link() -> None:
    trace = Trace(tuple(range(1, 11)))  # one opportunity per millisecond
    link: Link[bytes] = Link(LinkConfig(trace=trace, delay_s=0.01), start=0.0)
    for sequence in range(3):
        link.send(packet(sequence, 1500), 0.0)
    assert [time for time, _ in drain(link)] == pytest.approx([0.011, 0.012, 0.013])


@settings(max_examples=60, deadline=None)
@given(
    loss=st.floats(0, 0.5),
    duplicate=st.floats(0, 0.5),
    reorder=st.floats(0, 0.5),
    rate_bps=st.one_of(st.none(), st.floats(1e4, 1e7)),
    queue_packets=st.one_of(st.none(), st.integers(1, 20)),
    sends=st.lists(
        st.tuples(st.floats(0, 0.05), st.integers(1, 1500)), min_size=1, max_size=80
    ),
    seed=st.integers(0, 1000),
)
def test_every_packet_is_accounted_for(
    loss: float,
    duplicate: float,
    reorder: float,
    rate_bps: float | None,
    queue_packets: int | None,
    sends: list[tuple[float, int]],
    seed: int,
) -> None:
    config = LinkConfig(
        delay_s=0.01,
        jitter_s=0.005,
        loss=loss,
        duplicate=duplicate,
        reorder=reorder,
        rate_bps=rate_bps,
        queue_packets=queue_packets,
    )
    link: Link[bytes] = Link(config, seed=seed)
    now = 0.0
    for gap, size in sends:
        now += gap
        link.send(bytes(size), now)
        link.receive(now)
        stats = link.stats
        assert stats.packets_in + stats.duplicated == (
            stats.packets_out + stats.dropped + stats.queued_packets + stats.in_flight
        )
        if queue_packets is not None:
            assert stats.queued_packets <= queue_packets
    drain(link)
    stats = link.stats
    assert stats.queued_packets == stats.in_flight == 0
    assert stats.packets_in + stats.duplicated == stats.packets_out + stats.dropped
