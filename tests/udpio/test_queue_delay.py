"""How long what is read waited in the socket: markers through the queue
(pure logic on a virtual clock), the endpoint shedding on real sockets, and
loss timers that wait out the backlog (aioquic in memory, virtual clock)."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from pytest import approx

from udpio import MAX_DATAGRAMS_PER_WAKEUP, open_endpoint
from udpio.endpoint import FIRST_FLIGHTS_PER_TURN
from udpio.initials import FIRST_FLIGHT_MIN_BYTES
from udpio.queue_delay import (
    INTERVAL_S,
    KEYS,
    MIN_SHARE,
    TARGET_S,
    BacklogAwareRecovery,
    QueueDelay,
    wait_out_backlog,
)

from .test_ack_delay import connected


def test_nothing_is_known_to_wait_without_a_marker_behind_it():
    delay = QueueDelay(limit=0.25)
    assert delay.marker_interval == TARGET_S
    assert delay.due(0.0)
    assert delay.waited(10.0) == 0.0 and not delay.shed(0, 10.0)
    number = delay.sent(1.0)
    assert not delay.due(1.0 + TARGET_S / 2) and delay.due(1.0 + TARGET_S * 1.5)
    # What is read before the marker arrived before 1.0.
    assert delay.waited(1.2) == approx(0.2) and not delay.shed(0, 1.2)
    assert delay.shed(0, 1.26)
    delay.read(number, 1.3)
    assert delay.last_delay == approx(0.3)
    assert delay.waited(2.0) == 0.0 and not delay.shed(0, 2.0)  # no bound


def test_the_oldest_marker_in_flight_bounds_the_wait():
    delay = QueueDelay(limit=1.0)
    first = delay.sent(1.0)
    delay.sent(1.1)
    third = delay.sent(1.2)
    assert delay.waited(1.5) == approx(0.5)
    delay.read(first, 1.6)
    assert delay.waited(1.6) == approx(0.5)  # the second, sent at 1.1
    # The second never came out (dropped by a full queue): reading the third
    # forgets it too.
    delay.read(third, 1.7)
    assert delay.waited(1.8) == 0.0
    assert delay.last_delay == approx(0.5)


def test_a_marker_that_could_not_be_sent_bounds_nothing():
    delay = QueueDelay(limit=0.25)
    first = delay.sent(1.0)
    second = delay.sent(1.1)
    delay.not_sent(first)  # not the last one noted: left alone
    assert len(delay.in_flight) == 2
    delay.not_sent(second)
    assert len(delay.in_flight) == 1
    assert delay.waited(1.5) == approx(0.5)  # the first still bounds


def test_an_empty_queue_forgets_markers_lost_in_it():
    delay = QueueDelay(limit=0.25)
    delay.sent(1.0)
    delay.emptied()
    assert delay.waited(5.0) == 0.0 and not delay.shed(0, 5.0)
    delay.read(0, 5.0)  # a late marker of no count changes nothing
    assert delay.last_delay is None


def marker(delay: QueueDelay, now: float, waits: float) -> float:
    """Send a marker at ``now`` that is read ``waits`` later; returns then."""
    number = delay.sent(now)
    delay.read(number, now + waits)
    return now + waits


def test_a_standing_queue_is_served_to_fewer_connections():
    """Markers that come through above the target for the interval: from
    then on each one still above it serves a quarter fewer connection keys
    (down to MIN_SHARE), and the others' datagrams are shed; a marker under
    the target, or an empty queue, serves them all again."""
    delay = QueueDelay(limit=0.25)
    now = 0.0

    now = marker(delay, now, 0.06)
    now = marker(delay, now, 0.06)  # above the target since 0.06
    assert not delay.standing(0.06 + INTERVAL_S - 0.001)
    assert delay.standing(0.06 + INTERVAL_S)
    assert delay.share == KEYS  # nobody shed for standing yet
    now = marker(delay, now, 0.06)
    assert delay.share == KEYS * 3 // 4
    delay.sent(now)
    at = now + 0.01
    assert not delay.shed(0, at) and not delay.shed(KEYS * 3 // 4 - 1, at)
    assert delay.shed(KEYS * 3 // 4, at) and delay.shed(KEYS - 1, at)
    assert delay.shed(0, now + 0.26)  # over the limit, every key
    # A new connection's first flight waits for the queue to go, whatever its key.
    assert delay.shed(0, at, opens=True)
    delay.emptied()
    assert delay.share == KEYS and not delay.standing(now)
    for _ in range(3):
        now = marker(delay, now, 0.06)
    for _ in range(30):
        now = marker(delay, now, 0.06)
    assert delay.share == MIN_SHARE
    now = marker(delay, now, TARGET_S / 2)  # came through under the target
    assert delay.share == KEYS and not delay.standing(now + 1.0)
    # A burst read above the target for less than the interval is read whole.
    busy = QueueDelay(limit=0.25)
    number = busy.sent(0.0)
    busy.read(number, 0.05)
    busy.sent(0.05)
    assert not busy.standing(0.05 + INTERVAL_S / 2)
    assert not any(busy.shed(key, 0.05 + INTERVAL_S / 2) for key in range(KEYS))
    assert not busy.shed(0, 0.05 + INTERVAL_S / 2, opens=True)


def test_each_standing_queue_serves_first_the_keys_shed_the_last_time():
    """A node behind again and again (a long login ramp) must not shed the
    same connections each time: an idle one whose keepalives all fall into
    standing queues for its idle timeout is ended. Each time the queue is
    worked down, the keys served next start past those served."""
    delay = QueueDelay(limit=10.0)
    now = 0.0

    def served() -> set[int]:
        delay.sent(now)
        served = {key for key in range(KEYS) if not delay.shed(key, now + 0.001)}
        delay.emptied()
        return served

    shed_in: dict[int, int] = dict.fromkeys(range(KEYS), 0)
    episodes = 12
    for episode in range(episodes):
        for _ in range(2 + 1 + episode % 3):  # cut the share 1 to 3 times
            now = marker(delay, now, 0.06)
        keys = served()
        assert len(keys) == delay_share_before_reset(episode)
        for key in set(range(KEYS)) - keys:
            shed_in[key] += 1
        assert delay.share == KEYS and not delay.standing(now)
        if episode == 0:
            assert keys == set(range(KEYS * 3 // 4))  # it starts at key 0
    # Every key was served in some standing queue, and none shed in all.
    assert max(shed_in.values()) < episodes
    assert min(shed_in.values()) > 0
    # The load is spread: no key was shed in more than half of them.
    assert max(shed_in.values()) <= episodes // 2 + 1
    # Worked down under the target (not found empty), it moves on as well.
    first = delay.first_served
    for _ in range(3):
        now = marker(delay, now, 0.06)
    now = marker(delay, now, TARGET_S / 2)
    assert delay.first_served == (first + KEYS * 3 // 4) % KEYS
    # A burst that never stood moves nothing.
    now = marker(delay, now, 0.06)
    now = marker(delay, now, TARGET_S / 2)
    assert delay.first_served == (first + KEYS * 3 // 4) % KEYS


def delay_share_before_reset(episode: int) -> int:
    """The share after 1 to 3 cuts by a quarter (the loop above)."""
    share = KEYS
    for _ in range(1 + episode % 3):
        share = share * 3 // 4
    return share


def test_the_target_is_never_above_the_limit():
    assert QueueDelay(limit=0.005).target == 0.005


class Slow(asyncio.DatagramProtocol):
    """A protocol that takes 10 ms a datagram: a node behind."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, float]] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append((data, time.monotonic()))
        time.sleep(0.01)


async def test_a_slow_reader_sheds_what_waited_and_keeps_what_is_fresh():
    endpoint, protocol = await open_endpoint(
        Slow, ("0.0.0.0", 0), max_receive_delay=0.3
    )
    assert endpoint.shedding
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    address = ("127.0.0.1", endpoint.get_extra_info("sockname")[1])
    try:
        for n in range(300):  # three seconds of work, queued at once
            sender.sendto(b"old %d" % n, address)
        await asyncio.sleep(4.0)
        for n in range(5):
            sender.sendto(b"new %d" % n, address)
        await asyncio.sleep(0.3)
    finally:
        sender.close()
        endpoint.close()
    assert isinstance(protocol, Slow)
    got = [data for data, _ in protocol.received]
    old = [data for data in got if data.startswith(b"old")]
    # In order, from the first: the first wakeup's bound (no marker was out
    # yet), then until the marker sent as the second began had been out for
    # the limit; the rest was shed.
    assert old == [b"old %d" % n for n in range(len(old))]
    assert MAX_DATAGRAMS_PER_WAKEUP < len(old) <= MAX_DATAGRAMS_PER_WAKEUP + 32
    second, last = (
        protocol.received[MAX_DATAGRAMS_PER_WAKEUP][1],
        protocol.received[len(old) - 1][1],
    )
    assert last - second <= 0.3 + 0.05
    assert endpoint.stats["datagrams_shed"] == 300 - len(old)
    # Fresh datagrams after the backlog are all handed on; markers never are.
    assert got[len(old) :] == [b"new %d" % n for n in range(5)]
    assert endpoint.queue_delay is not None
    assert endpoint.queue_delay.last_delay is not None


def first_flight(cid: bytes, tag: bytes, first: int = 0xC0, version: int = 1) -> bytes:
    """A long header's packet to ``cid`` padded to 1,200 bytes: by default
    an Initial of QUIC version 1, as a client's first flight is."""
    head = bytes([first]) + version.to_bytes(4, "big") + bytes([len(cid)]) + cid
    return (head + tag).ljust(FIRST_FLIGHT_MIN_BYTES, b"\x00")


class SlowNode(asyncio.DatagramProtocol):
    """A protocol that takes 2 ms a datagram and knows its connections' ids,
    as the node's router does."""

    KNOWN = b"\x00known!!"

    def __init__(self) -> None:
        self.received: list[bytes] = []

    def knows_connection_id(self, cid: bytes) -> bool:
        return cid == self.KNOWN

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append(data)
        time.sleep(0.002)


async def test_a_standing_queue_serves_its_connections_before_new_ones():
    # For two seconds, every 5 ms: a packet of an established connection with
    # a short header and one with a long header to a known id (0.8 of what
    # the protocol reads), and two first flights of new connections (another
    # 0.8). All are of connection key 0, always in the share served, and none
    # waits in the socket past the limit. First flights wait for their turn,
    # and are shed while the queue stands or too many wait: the connections'
    # packets are all read, in order.
    endpoint, protocol = await open_endpoint(
        SlowNode, ("0.0.0.0", 0), max_receive_delay=10.0
    )
    address = ("127.0.0.1", endpoint.get_extra_info("sockname")[1])
    long_header = bytes([0xC0, 0, 0, 0, 1, 8])
    established: list[bytes] = []
    new: list[bytes] = []

    def send() -> None:
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Too short to be anyone's first flight: handed on as they are.
        for datagram in (b"", b"\xc0\x00"):
            established.append(datagram)
            sender.sendto(datagram, address)
        start = time.monotonic()
        for n in range(400):
            established.append(b"\x40\x00" + b"%08d" % n)
            established.append(long_header + SlowNode.KNOWN + b"%08d" % n)
            new.append(first_flight(b"\x00" + b"%07d" % n, b"a"))
            new.append(first_flight(b"\x00" + b"%07d" % n, b"b"))
            for datagram in (established[-2], new[-2], established[-1], new[-1]):
                sender.sendto(datagram, address)
            time.sleep(max(0.0, start + 0.005 * (n + 1) - time.monotonic()))
        sender.close()

    try:
        await asyncio.to_thread(send)
        assert isinstance(protocol, SlowNode)
        for _ in range(100):  # what is still queued, read within 10 s
            shed = endpoint.stats["datagrams_shed"]
            if len(protocol.received) + shed == len(established) + len(new):
                break
            await asyncio.sleep(0.1)
    finally:
        endpoint.close()
    got = protocol.received
    assert [d for d in got if d in established] == established
    shed = len(new) - len([d for d in got if d not in established])
    assert shed > len(new) // 5, shed
    assert endpoint.stats["new_connection_datagrams_shed"] == shed
    assert endpoint.stats["datagrams_shed"] == shed


class FastNode(SlowNode):
    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append(data)


async def test_first_flights_wait_for_the_connections_datagrams_read_with_them():
    # One burst in the socket before the endpoint reads it: the connections'
    # datagrams are handed on as they are read, the first flights of new
    # connections after them, FIRST_FLIGHTS_PER_TURN a turn, in order.
    # What only looks like one (too small, not an Initial, a version the
    # endpoint does not speak, an id it knows) goes as it is read.
    # Without shedding (no limit) all go in the order they came.
    unknown = b"\x07unknown"
    lookalikes = [
        first_flight(unknown, b"small")[: FIRST_FLIGHT_MIN_BYTES - 1],
        first_flight(unknown, b"handshake", first=0xE0),
        first_flight(unknown, b"version 2 type", version=0x6B3343CF),
        first_flight(unknown, b"unknown version", version=0x0A0A0A0A),
        first_flight(SlowNode.KNOWN, b"known"),
    ]
    for limit in (10.0, None):
        endpoint, protocol = await open_endpoint(
            FastNode, ("127.0.0.1", 0), max_receive_delay=limit
        )
        assert isinstance(protocol, FastNode)
        address = endpoint.get_extra_info("sockname")
        turns: list[int] = []
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sent = []
        try:
            # Each large datagram between small ones: none coalesced (GRO).
            new = []
            for n in range(20):
                new.append(first_flight(b"\x07" + b"%07d" % n, b"new"))
                sent.append(new[-1])
                sent.append(b"\x40\x07" + b"%08d" % n)  # a connection's
                if n < len(lookalikes):
                    sent.append(lookalikes[n])
                    sent.append(b"\x40\x08" + b"%08d" % n)
            # A version 2 Initial's type bits are another's.
            new.append(first_flight(b"\x07v2", b"new", first=0xD0, version=0x6B3343CF))
            sent.append(new[-1])
            for datagram in sent:
                sender.sendto(datagram, address)
            for _ in range(100):
                turns.append(len(protocol.received))
                if len(protocol.received) == len(sent):
                    break
                await asyncio.sleep(0)
        finally:
            sender.close()
            endpoint.close()
        if limit is None:
            assert protocol.received == sent
            continue
        assert protocol.received == [d for d in sent if d not in new] + new
        # Each turn after the burst's handed on no more than its share of them.
        steps = [b - a for a, b in zip(turns, turns[1:], strict=False) if b > a]
        assert steps[0] == len(sent) - len(new)
        assert max(steps[1:]) <= FIRST_FLIGHTS_PER_TURN
        assert endpoint.stats["datagrams_shed"] == 0


async def test_a_marker_send_that_fails_is_not_counted_in_flight(caplog):
    endpoint, _ = await open_endpoint(Slow, ("127.0.0.1", 0), max_receive_delay=0.3)
    try:
        assert endpoint.queue_delay is not None and endpoint._marker is not None
        endpoint._marker.close()  # every send now fails
        endpoint._send_marker(endpoint.queue_delay)
        endpoint._send_marker(endpoint.queue_delay)
        assert not endpoint.queue_delay.in_flight
        assert endpoint.backlog() == 0.0
        warnings = [r for r in caplog.records if "marker could not" in r.message]
        assert len(warnings) == 1  # said once, not every 20 ms
    finally:
        endpoint.close()


async def test_without_a_limit_nothing_is_shed():
    endpoint, protocol = await open_endpoint(Slow, ("127.0.0.1", 0))
    assert not endpoint.shedding and endpoint.queue_delay is None
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for n in range(60):
            sender.sendto(b"%d" % n, endpoint.get_extra_info("sockname"))
        await asyncio.sleep(1.0)
    finally:
        sender.close()
        endpoint.close()
    assert isinstance(protocol, Slow)
    assert len(protocol.received) == 60
    assert endpoint.stats["datagrams_shed"] == 0


def test_loss_timers_wait_out_the_backlog(tmp_path):
    """Two real aioquic connections in memory (10 ms each way, virtual
    clock): with the server's reading 0.3 s behind, its probe timeout for a
    packet in flight comes 0.3 s later; caught up, as aioquic's."""
    link = connected(tmp_path, delayed=False)
    server = link.server
    behind = [0.0]
    classes: dict = {}
    loss = wait_out_backlog(server, lambda: behind[0], classes)
    assert loss is server._loss and isinstance(loss, BacklogAwareRecovery)
    assert wait_out_backlog(server, lambda: 1.0, classes) is loss  # idempotent
    assert type(loss).__name__ == "QuicPacketRecovery"  # keeps its name
    stream = server.get_next_available_stream_id(is_unidirectional=True)
    server.send_stream_data(stream, b"x")
    list(server.datagrams_to_send(now=link.now))  # in flight, never delivered
    on_time = server.get_timer()
    assert on_time is not None
    behind[0] = 0.3
    assert server.get_timer() == approx(on_time + 0.3)
    # The timer is not taken at its old time while the backlog lasts.
    server.handle_timer(now=on_time + 0.01)
    assert server._loss._pto_count == 0
    behind[0] = 0.0
    assert server.get_timer() == approx(on_time)
    server.handle_timer(now=on_time + 0.01)
    assert server._loss._pto_count == 1
    assert wait_out_backlog(object(), lambda: 0.0, {}) is None  # type: ignore[arg-type]
