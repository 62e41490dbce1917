"""Loss recovery on a virtual clock: the retransmit cache, the NACK generator,
the frame buffer with deadlines, and all three together over a lossy link."""

from __future__ import annotations

import heapq
import random

import pytest

from codec.media import CompletedFrame, FramesLost, VideoPacketizer, parse_packet
from codec.media.recovery import (
    EVICTION_SLACK_S,
    NACK_COPY_DELAY_S,
    REPAIR_COPIES,
    REPEAT_WINDOW_S,
    Arrival,
    FrameBuffer,
    NackGenerator,
    PlayoutDelay,
    Recovery,
    RetransmitCache,
    frame_wait_s,
)

# -- retransmit cache ------------------------------------------------------------


def test_cache_answers_a_nack_with_what_it_sent():
    cache = RetransmitCache()
    for seq in range(5):
        cache.put(7, seq, b"p%d" % seq, now=seq * 0.01)
    assert cache.retransmit(7, [1, 3], now=0.05) == [b"p1", b"p3"]
    assert cache.retransmit(8, [1], now=0.05) == []  # another track
    assert cache.retransmit(7, [9], now=0.05) == []
    assert cache.stats.retransmitted == 2 and cache.stats.missing == 2


def test_cache_is_bounded_in_age_and_bytes():
    cache = RetransmitCache(max_bytes=1000, max_age_s=1.0)
    cache.put(1, 0, bytes(400), now=0.0)
    cache.put(1, 1, bytes(400), now=0.5)
    cache.put(1, 2, bytes(400), now=0.6)  # pushes packet 0 out: 1,200 > 1,000
    assert len(cache) == 2 and cache.bytes_held == 800
    assert cache.retransmit(1, [0], now=0.7) == []
    assert cache.retransmit(1, [1], now=1.55) == []  # older than 1 s
    assert len(cache) == 1
    cache.put(1, 3, bytes(2000), now=1.56)  # bigger than the whole cache
    assert cache.bytes_held == 400


def test_cache_evicts_aged_packets_in_batches_but_never_resends_one():
    """Puts evict what aged at most EVICTION_SLACK_S late, many at once; a
    NACK is answered from an exact eviction."""
    cache = RetransmitCache(max_age_s=1.0)
    now = 0.0
    for seq in range(3000):  # 3 s at 1 ms apart
        now = seq * 0.001
        cache.put(1, seq, bytes(100), now)
        assert min(seq + 1, 1000) <= len(cache) <= 1001 + EVICTION_SLACK_S * 1000
    assert cache.retransmit(1, [1999 - 50], now) == []  # 1.05 s old
    assert len(cache) == 1001
    assert cache.retransmit(1, [2999 - 990], now) == [bytes(100)]


def test_cache_retransmits_a_packet_a_bounded_number_of_times_and_never_late():
    cache = RetransmitCache(max_retransmits=2)
    cache.put(1, 65535, b"x", now=0.0)
    answers = [cache.retransmit(1, [65535], now=0.01 * i) for i in range(1, 6)]
    assert answers == [[b"x"], [b"x"], [], [], []]
    assert cache.stats.exhausted == 3
    cache.put(1, 0, b"y", now=0.0)
    assert cache.retransmit(1, [0], now=0.25, deadline_s=0.2) == []
    assert cache.stats.too_late == 1
    assert cache.retransmit(1, [0], now=0.15, deadline_s=0.2) == [b"y"]


def test_a_packet_put_again_under_its_number_starts_its_retransmissions_afresh():
    """A number that comes round again (or a track's packet put twice) is a
    new packet: what the old one's retransmissions used up is forgotten, and
    other tracks' packets of the same number are apart."""
    cache = RetransmitCache(max_retransmits=1)
    cache.put(7, 3, b"old", now=0.0)
    cache.put(8, 3, b"other", now=0.0)
    assert cache.retransmit(7, [3], now=0.01) == [b"old"]
    assert cache.retransmit(7, [3], now=0.02) == []
    cache.put(7, 3 + 65536, b"new", now=0.03)
    assert cache.retransmit(7, [3], now=0.04) == [b"new"]
    assert cache.retransmit(7, [3], now=0.05) == []
    assert cache.retransmit(8, [3], now=0.05) == [b"other"]
    assert cache.bytes_held == len(b"new") + len(b"other")


def test_cache_sends_each_repair_in_copies_and_ignores_a_nacks_copy():
    cache = RetransmitCache(copies=2, min_interval_s=0.03)
    cache.put(1, 5, b"x", now=0.0)
    assert cache.retransmit(1, [5], now=0.05) == [b"x", b"x"]
    assert cache.retransmit(1, [5], now=0.06) == []  # the NACK's copy
    assert cache.stats.copies_ignored == 1
    assert cache.retransmit(1, [5], now=0.15) == [b"x", b"x"]  # a retry
    assert cache.retransmit(1, [5], now=0.25) == []
    assert cache.stats.retransmitted == 2 and cache.stats.exhausted == 1


# -- NACK generator --------------------------------------------------------------


def feed(nack: NackGenerator, seqs, now: float) -> list[int]:
    for seq in seqs:
        nack.on_packet(seq, now)
    return nack.due(now)


def test_a_gap_is_nacked_at_once_then_once_more_after_a_round_trip():
    nack = NackGenerator(give_up_s=0.5)
    nack.set_rtt(0.1)
    assert feed(nack, [10, 11], 0.0) == []
    assert feed(nack, [14], 0.01) == [12, 13]
    assert nack.due(0.05) == []
    assert nack.next_deadline() == pytest.approx(0.11)
    assert nack.due(0.11) == [12, 13]
    assert nack.due(0.3) == []  # two requests per packet, no more
    assert nack.stats.retries == 2 and nack.stats.packets_requested == 4
    assert nack.next_deadline() == pytest.approx(0.51)  # the give-up
    assert nack.due(0.51) == [] and nack.missing == []
    assert nack.stats.packets_given_up == 2


def test_retransmissions_that_arrive_leave_the_list_and_count_as_recovered():
    nack = NackGenerator()
    assert feed(nack, [1, 2, 5], 0.0) == [3, 4]
    assert nack.on_packet(4, 0.05) is Arrival.FILLED
    assert nack.on_packet(4, 0.06) is Arrival.OLD  # a duplicate
    assert nack.on_packet(6, 0.06) is Arrival.NEW
    assert nack.missing == [3]
    assert nack.stats.packets_recovered == 1


def test_each_nack_is_copied_once_for_what_is_still_missing():
    nack = NackGenerator(give_up_s=0.5, copy_delay_s=0.01)
    nack.set_rtt(0.1)
    assert feed(nack, [1, 4], 0.0) == [2, 3]
    assert nack.next_deadline() == pytest.approx(0.01)
    nack.on_packet(2, 0.005)
    assert nack.due(0.01) == [3]  # the copy, not a second request
    assert nack.due(0.05) == []
    assert (nack.stats.copies, nack.stats.retries) == (1, 0)
    assert nack.stats.packets_requested == 2 and nack.stats.nacks_sent == 2
    assert nack.due(0.1) == [3]  # the retry a round trip later
    assert nack.due(0.11) == [3]  # and its copy
    assert nack.due(0.3) == []
    assert (nack.stats.copies, nack.stats.retries) == (2, 1)
    recovered = nack.on_packet(3, 0.31)
    assert recovered is Arrival.FILLED
    assert nack.last_recovery == Recovery(0.0, 0.0, 2, 0.31)


def test_given_up_packets_are_told_apart_by_the_requests_made():
    nack = NackGenerator(give_up_s=0.3)
    nack.set_rtt(0.1)
    assert feed(nack, [1, 3], 0.0) == [2]
    assert nack.due(0.1) == [2]  # the retry
    assert nack.due(0.3) == [] and nack.stats.given_up_after_retry == 1
    # A loop stalled past the whole wait: given up before it was asked for.
    assert feed(nack, [5], 0.31) == [4]
    nack.on_packet(7, 0.32)
    assert nack.due(0.7) == []
    assert nack.stats.given_up_unasked == 1 and nack.stats.packets_given_up == 3


def test_no_retry_is_sent_that_could_not_return_before_the_deadline():
    nack = NackGenerator(give_up_s=0.15)
    nack.set_rtt(0.1)
    assert feed(nack, [1, 3], 0.0) == [2]
    # A retry at 0.1 s would come back at 0.2 s, after the 0.15 s deadline.
    assert nack.next_deadline() == pytest.approx(0.15)
    assert nack.due(0.12) == []
    assert nack.due(0.15) == [] and nack.stats.packets_given_up == 1


def test_reordered_packets_fill_the_gap_without_being_recovered():
    nack = NackGenerator(min_interval_s=0.0)
    nack.on_packet(1, 0.0)
    nack.on_packet(3, 0.001)
    nack.on_packet(2, 0.002)  # reordered before the NACK went out
    assert nack.due(0.002) == []
    assert nack.stats.packets_recovered == 0 and nack.stats.nacks_sent == 0


def test_sequence_numbers_wrap_around():
    nack = NackGenerator()
    assert feed(nack, [65533, 65534, 1, 2], 0.0) == [65535, 0]
    nack.on_packet(0, 0.02)
    assert nack.missing == [65535]


def test_nacks_are_rate_limited_and_bursts_bounded():
    nack = NackGenerator(min_interval_s=0.02, max_missing=100)
    assert feed(nack, [0, 3], 0.0) == [1, 2]
    assert feed(nack, [6], 0.005) == []  # too soon after the last NACK
    assert nack.next_deadline() == pytest.approx(0.02)
    assert nack.due(0.02) == [4, 5]
    # A burst of 50 losses is one NACK; a jump of 1,000 is a reset, no NACK.
    assert feed(nack, [57], 0.05) == list(range(7, 57))
    assert feed(nack, [1057], 0.08) == [] and nack.stats.resets == 1
    assert nack.missing == []


# -- frame buffer ----------------------------------------------------------------

W = frame_wait_s(0.1)


def packets_of_timestamp(n: int) -> int:
    """The 90 kHz timestamp of frame ``n`` of a 30 fps track."""
    return n * 3000


def packets_of(packetizer: VideoPacketizer, n: int, size: int = 2500, key=False):
    return packetizer.packetize(bytes([n % 256]) * size, packets_of_timestamp(n), key)


def test_frame_wait_follows_the_round_trip_within_bounds():
    assert frame_wait_s(0.11) == pytest.approx(0.27)
    assert frame_wait_s(0.001) == pytest.approx(0.25)
    assert frame_wait_s(2.0) == pytest.approx(0.3)
    buffer = FrameBuffer(rtt_s=0.02)
    assert buffer.wait_s == pytest.approx(0.25)
    buffer.set_rtt(0.11)
    assert buffer.wait_s == pytest.approx(0.27)


@pytest.mark.parametrize("rtt", [0.03, 0.07, 0.11])
def test_the_frame_wait_leaves_time_for_the_retry_of_a_lost_repair(rtt):
    # A NACK or its retransmission lost: the retry a round trip later must
    # still come back before the frame is given up (on a 110 ms path the
    # wait once covered one round trip and the retry was never sent).
    nack = NackGenerator(give_up_s=frame_wait_s(rtt))
    nack.set_rtt(rtt)
    assert feed(nack, [1, 3], 0.0) == [2]
    retry_at = nack.next_deadline()
    assert retry_at == pytest.approx(rtt)
    assert nack.due(retry_at) == [2] and nack.stats.retries == 1
    assert retry_at + rtt < frame_wait_s(rtt)


def test_a_frame_waits_for_its_retransmission_then_flows_in_order():
    packetizer = VideoPacketizer(1)
    buffer = FrameBuffer(rtt_s=0.1)
    f0, f1, f2 = (packets_of(packetizer, n) for n in range(3))
    assert [e.frame_number for e in buffer.push(f0[0], 0.0)] == []
    events = []
    for packet in [*f0[1:], *f1, f2[0], f2[2]]:
        events += buffer.push(packet, 0.01)
    assert [e.frame_number for e in events] == [0, 1]
    assert buffer.expire(0.1) == []  # still within the wait
    (done,) = buffer.push(f2[1], 0.12)  # the retransmission
    assert isinstance(done, CompletedFrame) and done.frame_number == 2


def test_a_frame_is_skipped_at_its_deadline_and_the_next_ones_flow():
    packetizer = VideoPacketizer(1)
    buffer = FrameBuffer(rtt_s=0.1)
    f0, f1, f2 = (packets_of(packetizer, n) for n in range(3))
    for packet in [*f0, f1[0], *f2]:
        buffer.push(packet, 0.0)
    assert buffer.next_deadline() == pytest.approx(W)
    assert buffer.expire(W - 0.001) == []
    lost, shown = buffer.expire(W)
    assert lost == FramesLost(1, 1) and shown.frame_number == 2
    assert buffer.push(f1[1], W + 0.01) == []  # too late: counted, dropped
    assert buffer.stats.late_packets == 1


def test_a_trickle_of_retransmissions_cannot_hold_a_frame_past_the_cap():
    packetizer = VideoPacketizer(1)
    buffer = FrameBuffer(rtt_s=0.1, max_hold_s=0.3)
    frame = packets_of(packetizer, 0, size=1150 * 20)
    after = packets_of(packetizer, 1)
    events = buffer.push(frame[0], 0.0)
    for packet in after:
        events += buffer.push(packet, 0.0)
    for index in range(1, 5):  # one more fragment every 0.1 s: progress
        now = 0.1 * index
        events += buffer.expire(now)
        events += buffer.push(frame[index], now)
        assert buffer.next_deadline() is None or buffer.next_deadline() <= 0.3
    assert events[0] == FramesLost(0, 1) and events[1].frame_number == 1
    assert buffer.stats.late_packets == 2  # fragments after the cap


# -- everything together over a lossy link ----------------------------------------


def simulate(
    loss: float,
    seed: int,
    *,
    burst: int = 1,
    max_retransmits: int = 2,
    ready_at: dict[int, float] | None = None,
    copies: int = 1,
):
    """A publisher sending 30 fps of 3-packet frames over a first-in first-out
    link of 50 ms one way that loses ``loss`` of the packets (in bursts of
    ``burst``) both ways;
    the receiver NACKs, the sender answers from its cache (with ``copies`` >
    1, each NACK is sent again 10 ms later and each repair ``copies`` times).
    Returns the
    receiver's frames delivered and lost, and the generator's stats; fills
    ``ready_at`` with when each frame was delivered."""
    rng = random.Random(seed)
    delay, rtt = 0.05, 0.1
    packetizer = VideoPacketizer(5, first_seq=65000)
    copied = copies > 1
    cache = RetransmitCache(
        max_retransmits=max_retransmits,
        copies=copies,
        min_interval_s=REPEAT_WINDOW_S if copied else 0.0,
    )
    buffer = FrameBuffer(rtt_s=rtt)
    nack = NackGenerator(
        give_up_s=buffer.wait_s, copy_delay_s=NACK_COPY_DELAY_S if copied else None
    )
    nack.set_rtt(rtt)
    events: list[tuple[float, int, str, object]] = []
    order = 0
    dropping = 0
    last_arrival = 0.0
    ticks: set[float] = set()

    def send(at: float, kind: str, item: object) -> None:
        nonlocal order, dropping, last_arrival
        if dropping or rng.random() < loss / burst:
            dropping = (dropping or burst) - 1
            return
        order += 1
        # A queue: jitter, but what was sent first arrives first.
        last_arrival = max(last_arrival, at + delay + rng.uniform(0, 0.005))
        heapq.heappush(events, (last_arrival, order, kind, item))

    for n in range(300):
        for index, packet in enumerate(packets_of(packetizer, n, 3000, n == 0)):
            # Before anything else due at that time, in sending order.
            heapq.heappush(events, (n / 30, index - 10, "send", packet))
    delivered, lost = [], 0
    while events:
        now, _, kind, item = heapq.heappop(events)
        if kind == "send":
            data = item.serialize()
            cache.put(5, item.seq, data, now)
            send(now, "data", data)
            continue
        if kind == "nack":
            for packet in cache.retransmit(5, item, now, deadline_s=buffer.wait_s):
                send(now, "data", packet)
            continue
        out = []
        if kind == "data":
            packet = parse_packet(item)
            nack.on_packet(packet.seq, now)
            out = buffer.push(packet, now)
        out += buffer.expire(now)
        for event in out:
            if isinstance(event, CompletedFrame):
                delivered.append(event.frame_number)
                if ready_at is not None:
                    ready_at[event.frame_number] = now
            else:
                lost += event.count
        if seqs := nack.due(now):
            send(now, "nack", seqs)
        for deadline in (nack.next_deadline(), buffer.next_deadline()):
            if deadline is not None and deadline not in ticks:
                ticks.add(deadline)
                heapq.heappush(events, (max(deadline, now), order, "tick", None))
                order += 1
    return delivered, lost, nack.stats


@pytest.mark.parametrize(("loss", "burst"), [(0.02, 1), (0.05, 1), (0.05, 3)])
def test_retransmission_recovers_almost_every_frame(loss, burst):
    delivered, lost, stats = simulate(loss, seed=11, burst=burst)
    assert delivered == sorted(delivered)
    assert len(delivered) + lost == 300
    assert stats.packets_recovered > 0
    assert stats.packets_requested < 3 * loss * 900  # no storm of NACKs
    # Without recovery about 1 - (1 - loss)^3 of the frames would be lost (27
    # and 43 here); with it, those whose NACK or retransmission was lost too.
    assert lost <= 8, (lost, stats)


def test_without_retransmission_the_same_link_loses_many_frames():
    _, lost, stats = simulate(0.05, seed=11, max_retransmits=0)
    assert lost > 20 and stats.packets_recovered == 0


def frozen_s(shown_at: list[float]) -> float:
    """Time in gaps between shown frames longer than max(3 frame intervals,
    150 ms), as the receiver counts freezes."""
    gaps = [b - a for a, b in zip(shown_at, shown_at[1:], strict=False)]
    return sum(gap for gap in gaps if gap > max(3 / 30, 0.15))


@pytest.mark.parametrize("loss", [0.02, 0.05])
def test_frames_shown_at_their_playout_time_do_not_freeze_at_each_repair(loss):
    ready_at: dict[int, float] = {}
    delivered, lost, _ = simulate(loss, seed=11, ready_at=ready_at)
    playout = PlayoutDelay()
    shown_at = []
    for n in delivered:
        playout.on_frame(packets_of_timestamp(n), ready_at[n])
        shown_at.append(max(ready_at[n], playout.render_time(packets_of_timestamp(n))))
    as_ready = frozen_s([ready_at[n] for n in delivered])
    scheduled = frozen_s(shown_at)
    # Shown when whole, a frame a retransmission repaired (a 100 ms round trip)
    # freezes the picture; shown at its playout time, only a lost frame does.
    assert as_ready > 0.5, (as_ready, lost)
    assert scheduled <= 0.4 * as_ready, (scheduled, as_ready, lost)
    assert playout.delay_s <= 0.12


def frozen_with_playout(loss: float, seed: int, copies: int) -> float:
    """Frozen time after the first 2 s (before, the playout delay has seen no
    repair yet, and the first repaired frame freezes however it came)."""
    ready_at: dict[int, float] = {}
    delivered, _, _ = simulate(loss, seed, ready_at=ready_at, copies=copies)
    playout = PlayoutDelay()
    shown_at = []
    for n in delivered:
        playout.on_frame(packets_of_timestamp(n), ready_at[n])
        shown = max(ready_at[n], playout.render_time(packets_of_timestamp(n)))
        if n >= 60:
            shown_at.append(shown)
    return frozen_s(shown_at)


@pytest.mark.parametrize("loss", [0.02, 0.05])
def test_nacks_and_repairs_sent_twice_spare_the_freeze_of_a_retry(loss):
    # A repair whose NACK or retransmission is lost comes a round trip later
    # than the playout delay covers: a freeze. Sent twice, both must be lost.
    once = sum(frozen_with_playout(loss, seed, 1) for seed in range(1, 11))
    twice = sum(frozen_with_playout(loss, seed, REPAIR_COPIES) for seed in range(1, 11))
    assert once > 1.0 and twice <= 0.3 * once, (twice, once)


def test_a_retry_on_a_short_round_trip_waits_past_the_copy_window():
    # On a 5 ms round trip a retry at 5 ms would fall in the sender's window
    # for the NACK's copy and be ignored: it waits for two copy delays.
    nack = NackGenerator(give_up_s=0.25, copy_delay_s=NACK_COPY_DELAY_S)
    nack.set_rtt(0.005)
    cache = RetransmitCache(copies=2, min_interval_s=REPEAT_WINDOW_S)
    cache.put(1, 2, b"x", now=0.0)
    assert feed(nack, [1, 3], 0.0) == [2]
    assert cache.retransmit(1, [2], now=0.0) == [b"x", b"x"]
    assert nack.due(NACK_COPY_DELAY_S) == [2]  # the copy
    assert cache.retransmit(1, [2], now=NACK_COPY_DELAY_S) == []
    retry_at = nack.next_deadline()
    assert retry_at == pytest.approx(2 * NACK_COPY_DELAY_S)
    assert retry_at > REPEAT_WINDOW_S
    assert nack.due(retry_at) == [2]
    assert cache.retransmit(1, [2], now=retry_at) == [b"x", b"x"]
