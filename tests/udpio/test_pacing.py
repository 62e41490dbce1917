""":mod:`udpio.pacing` on a virtual clock: a sender paced by aioquic's pacer or
by :class:`GranularPacer`, woken by a model of each event loop's clock and
timers (uvloop: a clock in whole milliseconds, a timer due in under 0.5 ms run
at the next turn; asyncio: a fine clock, an ``epoll`` sleep of whole
milliseconds). At high rates aioquic's pacer spins on uvloop, where it is
held to 16 packets a millisecond; the granular one sends at the pacing rate
with one wakeup a millisecond on both loops. Below one packet a millisecond
the two decide alike."""

from __future__ import annotations

import math
import random

import pytest
from aioquic.quic.recovery import QuicPacketPacer

from udpio.pacing import TIMER_GRANULARITY, GranularPacer, install

PACKET = 1200
TURN = 20e-6
"""Real seconds one turn of the loop takes (the sender's own work)."""


def next_wakeup(loop: str, t: float, hold: float) -> float:
    """Real time at which a loop woken at real time ``t`` runs a timer armed
    for loop time ``hold``."""
    if loop == "uvloop":
        uv_now = math.floor(t * 1000) / 1000  # its clock, in whole ms
        ms = round((hold - uv_now) * 1000)
        if ms <= 0:
            return t + TURN  # run at the next turn, early
        return max(t + TURN, uv_now + ms / 1000)
    timeout = hold - t
    if timeout <= 0:
        return t + TURN
    return t + math.ceil(timeout * 1000) / 1000  # epoll waits whole ms


def loop_time(loop: str, t: float) -> float:
    return math.floor(t * 1000) / 1000 if loop == "uvloop" else t


def run(pacer: QuicPacketPacer, loop: str, rate: float, seconds: float = 0.2):
    """Pace a sender with unlimited data at ``rate`` bytes/s (the window never
    limits it); return (packets a millisecond, wakeups a millisecond, share
    of wakeups that sent nothing)."""
    srtt = 0.010
    pacer.update_rate(congestion_window=int(rate * srtt), smoothed_rtt=srtt)
    t, sent, wakeups, empty = 0.0, 0, 0, 0
    while t < seconds:
        wakeups += 1
        now = loop_time(loop, t)
        before = sent
        while (hold := pacer.next_send_time(now=now)) is None:
            pacer.update_after_send(now=now)
            sent += 1
        empty += sent == before
        t = next_wakeup(loop, t + TURN, hold)
    ms = seconds * 1000
    return sent / ms, wakeups / ms, empty / wakeups


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
@pytest.mark.parametrize("mbit", [40, 100, 300, 1000])
def test_at_high_rates_it_sends_at_the_pacing_rate_one_wakeup_a_millisecond(
    loop: str, mbit: int
) -> None:
    rate = mbit * 1e6 / 8
    wanted = rate / 1000 / PACKET  # packets a millisecond
    packets, wakeups, empty = run(GranularPacer(max_datagram_size=PACKET), loop, rate)
    # a packet leaves on any credit, as aioquic lets it: a millisecond of
    # 4.2 packets' credit sends 5 (so up to 1.2 times the rate at 40 Mbit/s)
    assert 0.95 * wanted <= packets <= math.ceil(wanted) + 0.1
    assert wakeups <= 1.1
    assert empty <= 0.05

    if loop == "uvloop":
        # aioquic's own: a spin of wakeups that send nothing until the clock
        # moves, then at most 16 packets (its bucket)
        packets, wakeups, empty = run(
            QuicPacketPacer(max_datagram_size=PACKET), loop, rate
        )
        assert wakeups > 10 and empty > 0.9
        assert packets <= 16.5


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
@pytest.mark.parametrize("mbit", [0.3, 1, 4, 9])
def test_below_a_packet_a_millisecond_the_rate_is_the_same_as_aioquics(
    loop: str, mbit: int
) -> None:
    rate = mbit * 1e6 / 8
    ours = run(GranularPacer(max_datagram_size=PACKET), loop, rate, seconds=2)
    theirs = run(QuicPacketPacer(max_datagram_size=PACKET), loop, rate, seconds=2)
    assert ours == theirs


def test_below_a_packet_a_millisecond_every_decision_is_aioquics() -> None:
    """Both pacers through the same random calls (rates at which a packet takes
    a millisecond or more, the clock moving by random steps, sends and rate
    changes interleaved): every answer and the bucket after every call equal."""
    rng = random.Random(7)
    ours = GranularPacer(max_datagram_size=PACKET)
    theirs = QuicPacketPacer(max_datagram_size=PACKET)
    now = 0.0
    for _ in range(20_000):
        action = rng.random()
        if action < 0.05:
            srtt = rng.uniform(0.001, 0.3)
            # a packet time of 1 to 100 ms
            window = int(PACKET * srtt / rng.uniform(TIMER_GRANULARITY, 0.1))
            for pacer in (ours, theirs):
                pacer.update_rate(congestion_window=window, smoothed_rtt=srtt)
        elif action < 0.6:
            assert ours.next_send_time(now=now) == theirs.next_send_time(now=now)
        else:
            for pacer in (ours, theirs):
                pacer.update_after_send(now=now)
        now += rng.choice((0.0, rng.uniform(0, 0.003)))
        assert (ours.bucket_time, ours.bucket_max, ours.packet_time) == (
            theirs.bucket_time,
            theirs.bucket_max,
            theirs.packet_time,
        )


def test_a_hold_is_one_granularity_at_least_and_the_bucket_two() -> None:
    pacer = GranularPacer(max_datagram_size=PACKET)
    assert pacer.next_send_time(now=0.0) is None  # no rate yet: no pacing
    pacer.update_rate(congestion_window=400_000, smoothed_rtt=0.001)  # 400 MB/s
    assert pacer.packet_time == pytest.approx(3e-6)
    assert pacer.bucket_max == pytest.approx(2 * TIMER_GRANULARITY)
    while pacer.next_send_time(now=1.0) is None:  # empty the bucket
        pacer.update_after_send(now=1.0)
    assert pacer.next_send_time(now=1.0) == pytest.approx(1.0 + TIMER_GRANULARITY)
    # one granularity later, a millisecond's packets leave
    sent = 0
    while pacer.next_send_time(now=1.001) is None:
        pacer.update_after_send(now=1.001)
        sent += 1
    assert sent == math.ceil(TIMER_GRANULARITY / pacer.packet_time)  # any credit sends


def test_install_gives_the_class_once_and_leaves_others_alone() -> None:
    class Loss:
        def __init__(self, pacer: object) -> None:
            self._pacer = pacer

    class Connection:
        def __init__(self, pacer: object) -> None:
            self._loss = Loss(pacer)

    pacer = QuicPacketPacer(max_datagram_size=PACKET)
    pacer.update_rate(congestion_window=40_000, smoothed_rtt=0.01)
    quic = Connection(pacer)
    assert install(quic) is pacer and type(pacer) is GranularPacer  # type: ignore[arg-type]
    assert pacer.bucket_time == 0.0 and pacer.packet_time == pytest.approx(3e-4)
    assert install(quic) is pacer  # type: ignore[arg-type]
    assert install(Connection(object())) is None  # type: ignore[arg-type]
    assert install(object()) is None  # type: ignore[arg-type]
