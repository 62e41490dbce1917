"""The SFU hop's pacer (:class:`server.sfu_hop.Hop`): lanes in priority
order, transport sequence numbers given on release, the connection's own
queue kept to a few datagrams, release at the pace of the path's estimate.
On a virtual clock with a stand-in connection, and on two real aioquic
connections wired in memory."""

from __future__ import annotations

import struct
from collections import deque

import pytest
from aioquic.quic.events import DatagramFrameReceived

from codec.media.adapt.pacer import BURST_S, MIN_BURST_BYTES, PACING_FACTOR
from codec.media.packet import AudioPacket, VideoPacket
from server import quic_fastpath
from server.sfu import Forwarder
from server.sfu_hop import QUEUE_DEPTH, Hop
from tests.server.test_quic_fastpath import SERVER, connected

_U16 = struct.Struct(">H")


class FakeLoss:
    _rtt_initialized = True
    _rtt_smoothed = 0.05


class FakeQuic:
    def __init__(self) -> None:
        self._datagrams_pending: deque[bytes] = deque()
        self._loss = FakeLoss()

    def send_datagram_frame(self, data: bytes) -> None:
        self._datagrams_pending.append(data)


class FakeConn:
    def __init__(self, quic=None) -> None:
        self.quic = quic or FakeQuic()
        self.transmits = 0
        self.max_media_datagram = 1170

    def transmit_soon(self) -> None:
        self.transmits += 1


class Timers:
    """A virtual clock and the loop's ``call_later`` on it."""

    def __init__(self) -> None:
        self.now = 10.0
        self.due: list[tuple[float, object]] = []

    def __call__(self) -> float:
        return self.now

    def call_later(self, delay: float, callback):
        assert delay > 0
        entry = [self.now + delay, callback]
        self.due.append(entry)

        class Handle:
            def cancel(_self) -> None:
                if entry in self.due:
                    self.due.remove(entry)

        return Handle()

    def run_until(self, until: float) -> None:
        while self.due:
            entry = min(self.due, key=lambda e: e[0])
            if entry[0] > until:
                break
            self.due.remove(entry)
            self.now = entry[0]
            entry[1]()
        self.now = until


def video(seq: int, size: int = 1000, track_id: int = 7) -> bytes:
    return VideoPacket(
        track_id=track_id,
        seq=seq,
        transport_seq=0,
        timestamp=0,
        frame_number=seq,
        fragment_index=0,
        fragment_count=1,
        keyframe=False,
        layer=0,
        payload=b"v" * size,
    ).serialize()


def audio(seq: int) -> bytes:
    return AudioPacket(9, seq, 0, 0, 50, True, b"opus").serialize()


def transport_seq(data: bytes) -> int:
    return _U16.unpack_from(data, 2)[0]


def media_seq(data: bytes) -> int:
    return _U16.unpack_from(data, 8)[0]


def drain(hop: Hop) -> list[bytes]:
    """What the connection sends in one round: its queue, topped up by the
    hop as the real connection's sender does."""
    sent = []
    while True:
        hop.refill(0.0 if hop.clock is None else hop.clock())
        if not hop.pending:
            return sent
        sent.extend(hop.pending)
        hop.pending.clear()


def test_numbers_are_given_on_release_and_the_connection_queue_stays_short():
    hop = Hop(FakeConn(), depth=2)
    for seq in range(5):
        hop.send(video(seq), 0.0)
    assert [transport_seq(d) for d in hop.pending] == [0, 1]
    assert hop.queued == 5
    hop.pending.popleft()
    assert hop.refill(0.0) == 1
    assert [transport_seq(d) for d in hop.pending] == [1, 2]
    sent = drain(hop)
    assert [media_seq(d) for d in sent] == [1, 2, 3, 4]
    assert [transport_seq(d) for d in sent] == [1, 2, 3, 4]
    assert hop.queued == 0 and hop.released == 5


def test_audio_then_repairs_then_video_whatever_waits():
    hop = Hop(FakeConn(), depth=1)
    for seq in range(3):
        hop.send(video(seq), 0.0)
    hop.send(video(100), 0.0, repair=True)
    hop.send_control(b"\x60control", 0.0)
    hop.send(audio(5), 0.0, first=True)
    sent = drain(hop)
    # The first video went into the connection's queue before the rest came.
    assert media_seq(sent[0]) == 0
    assert sent[1] == b"\x60control"
    assert sent[2][:1] == audio(5)[:1]
    assert media_seq(sent[3]) == 100  # the repair
    assert [media_seq(d) for d in sent[4:]] == [1, 2]
    numbered = [d for d in sent if d != b"\x60control"]
    # Numbered in the order they left: the feedback reads the path's order.
    assert [transport_seq(d) for d in numbered] == [0, 1, 2, 3, 4]


def test_video_skips_the_lanes_only_while_nothing_waits_in_them():
    """With the lanes empty and no pacing rate, video goes straight into the
    connection's queue, numbered; once something waits in the lanes, new
    video waits behind it even where the queue has room again."""
    hop = Hop(FakeConn(), depth=1)
    hop.send(video(0), 0.0)
    assert [media_seq(d) for d in hop.pending] == [0] and hop.queued == 1
    hop.send(video(1), 0.0)  # the queue is full: into the lanes
    assert hop.queued == 2
    hop.pending.popleft()  # sent, without a refill yet
    hop.send(video(2), 0.0)
    sent = drain(hop)
    assert [media_seq(d) for d in sent] == [1, 2]
    assert [transport_seq(d) for d in sent] == [1, 2]
    assert hop.queued == 0 and hop.released == 3


def test_congestion_and_queue_delay_count_what_the_pacer_holds():
    hop = Hop(FakeConn(), depth=2)
    for seq in range(10):
        hop.send(video(seq), 0.0)
    assert len(hop.pending) == 2 and hop.queued == 10
    assert hop.congested(0.0, max_queued=8, max_queue_delay=1.0)
    assert not hop.congested(0.0, max_queued=16, max_queue_delay=1.0)
    assert hop.congested(0.2, max_queued=16, max_queue_delay=0.15)
    assert hop.queue_delay(0.2) == pytest.approx(0.2)


def test_released_at_the_pace_of_the_estimate():
    timers = Timers()
    conn = FakeConn()
    hop = Hop(conn, clock=timers, call_later=timers.call_later)
    hop.pace(800_000, timers.now)
    assert hop.pacing_bps == pytest.approx(800_000 * PACING_FACTOR)
    rate = 800_000 * PACING_FACTOR / 8
    start = timers.now
    sizes = []
    for seq in range(200):
        hop.send(video(seq, 980), timers.now)
    size = len(hop.pending[0])
    burst = max(rate * BURST_S, MIN_BURST_BYTES)
    # An idle pacer starts with one burst's allowance and no more.
    assert len(hop.pending) == -(-burst // size)
    for step in range(1, 11):
        timers.run_until(start + step * 0.1)
        sizes.append(len(hop.pending) * size)
    # Nothing left faster than the rate plus a burst, or much slower.
    for step, sent in enumerate(sizes, start=1):
        allowed = rate * step * 0.1 + burst + size
        assert allowed - 2 * size <= sent <= allowed
    assert hop.waits > 0
    # The path limits nobody any more: what waits leaves at once.
    hop.pace(None, timers.now)
    assert hop.pacing_bps is None and hop.queued == len(hop.pending) == 200
    assert not timers.due


def test_a_hop_without_a_timer_is_never_paced():
    hop = Hop(FakeConn())
    hop.pace(100_000, 0.0)
    assert hop.pacing_bps is None
    for seq in range(50):
        hop.send(video(seq), 0.0)
    assert len(hop.pending) == 50


def test_stop_drops_what_waits_and_the_timer():
    timers = Timers()
    hop = Hop(FakeConn(), clock=timers, call_later=timers.call_later, depth=4)
    hop.pace(100_000, timers.now)
    for seq in range(20):
        hop.send(video(seq), timers.now)
    assert timers.due and hop.queued == 20
    hop.stop()
    assert not timers.due and hop.queued == len(hop.pending)


def test_the_member_feedback_sets_the_pace_of_its_hop():
    from codec.media.feedback import FeedbackPacket

    timers = Timers()
    sfu = Forwarder(timers, call_later=timers.call_later)
    a, b = FakeConn(), FakeConn()
    sfu.set_room("room", [(a, [7]), (b, [])])
    hop = sfu.endpoints[b].hop
    assert hop.pacing_bps is None  # nothing measured yet: not paced
    for seq in range(20):
        sfu.on_datagram(a, video(seq, 500))
        timers.run_until(timers.now + 0.01)
    feedback = FeedbackPacket.from_arrival_times(0, 0, [i * 0.01 for i in range(20)])
    sfu.on_datagram(b, feedback.serialize())
    target = hop.estimator.target_bps
    assert target < hop.path.max_bps
    assert hop.pacing_bps == pytest.approx(target * PACING_FACTOR)
    sfu.remove(b)
    assert hop.queued == len(hop.pending)


def test_a_real_connection_tops_its_queue_up_while_it_sends(tmp_path):
    """Kept to a few datagrams, the connection's queue still lets each call
    send what the connection's window and pacing allow: as many packets as
    the same connection sends with all of it queued at once."""
    client, server, wire = connected(tmp_path / "hop")
    twin_client, twin, twin_wire = connected(tmp_path / "twin")
    quic_fastpath.install(twin)
    hop = Hop(FakeConn(server))
    assert hop.depth == QUEUE_DEPTH
    for seq in range(40):
        hop.send(video(seq), wire.now)
        twin.send_datagram_frame(video(seq))
    assert len(server._datagrams_pending) == QUEUE_DEPTH
    assert hop.queued == 40
    got = []
    while hop.queued:
        out = server.datagrams_to_send(wire.now)
        twin_out = twin.datagrams_to_send(twin_wire.now)
        assert len(out) == len(twin_out)
        assert len(server._datagrams_pending) <= QUEUE_DEPTH
        for data, _ in out:
            client.receive_datagram(data, SERVER, wire.now)
        for data, _ in twin_out:
            twin_client.receive_datagram(data, SERVER, twin_wire.now)
        for w in (wire, twin_wire):
            w.now += 0.005
            w.send(w.client)  # the ACKs
        while (event := client.next_event()) is not None:
            if isinstance(event, DatagramFrameReceived):
                got.append(event.data)
    assert [media_seq(d) for d in got] == list(range(40))
    assert [transport_seq(d) for d in got] == list(range(40))


def test_a_repair_that_waited_past_its_budget_is_dropped_not_sent():
    hop = Hop(FakeConn(), depth=1)
    budget = hop.retransmit_budget_s(0.0)
    hop.send(video(0), 0.0)  # fills the connection's queue
    hop.send(video(50), 0.0, repair=True)
    hop.send(video(51), budget / 2, repair=True)
    hop.send(video(1), budget / 2)
    hop.pending.clear()
    later = budget + 0.01
    sent = []
    while hop.refill(later) or hop.pending:
        sent.extend(hop.pending)
        hop.pending.clear()
    assert [media_seq(d) for d in sent] == [51, 1]
    assert hop.repairs_expired == 1 and hop.queued == 0
    assert [transport_seq(d) for d in sent] == [1, 2]  # no number was spent
