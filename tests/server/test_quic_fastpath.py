"""The short DATAGRAM path of :mod:`server.quic_fastpath` on two real aioquic
connections wired in memory on a virtual clock: its packets are read by an
unmodified aioquic peer, carry the plaintext aioquic's own builder makes, and
are accounted for by loss detection and congestion control as aioquic's are;
anything but DATAGRAM frames goes through aioquic's method. The same for the
short ACK path (:mod:`udpio.short_acks`), on the server's end and on the
client's, and a keepalive PING's (:func:`udpio.short_path.send_ping`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from aioquic import tls
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import (
    DatagramFrameReceived,
    PingAcknowledged,
    StreamDataReceived,
)

from server import quic_fastpath
from udpio import ack_delay, short_acks, short_path

sys.path.insert(0, str(Path(__file__).parent.parent / "udpio"))
from test_mtu_probe import CLIENT, SERVER, Wire, pair  # noqa: E402

PAYLOAD = b"m" * 1150


def connected(tmp_path: Path):
    client, server = pair(tmp_path)
    client.connect(SERVER, now=0.0)
    wire = Wire(client, server, 1500)
    wire.run(1.0)
    return client, server, wire


def received(client) -> list[bytes]:
    out = []
    while (event := client.next_event()) is not None:
        if isinstance(event, DatagramFrameReceived):
            out.append(event.data)
    return out


class Recorder:
    """Records what a crypto pair is asked to encrypt."""

    def __init__(self, pair) -> None:
        self.pair, self.calls = pair, []
        self.original = pair.encrypt_packet

    def __enter__(self):
        def record(header, payload, number):
            self.calls.append((header, payload, number))
            return self.original(header, payload, number)

        self.pair.encrypt_packet = record
        return self

    def __exit__(self, *exc) -> None:
        del self.pair.encrypt_packet


def send(server, client, now, datagrams, *, aioquic=False):
    """Queue ``datagrams`` on ``server`` and deliver what its call builds;
    ``aioquic``: call aioquic's method itself, past the short path."""
    for data in datagrams:
        server.send_datagram_frame(data)
    if aioquic:
        out = QuicConnection.datagrams_to_send(server, now)
    else:
        out = server.datagrams_to_send(now)
    for data, _ in out:
        client.receive_datagram(data, SERVER, now)
    return out


def test_fast_packets_are_read_by_aioquic_and_match_its_builder(tmp_path):
    client, server, wire = connected(tmp_path)
    received(client)
    sender = quic_fastpath.install(server)
    crypto = server._cryptos[tls.Epoch.ONE_RTT]
    now = wire.now
    small = [b"a" * 300, b"b" * 400, b"c" * 20]  # three frames in one packet
    # 10 ms apart: the connection's pacer holds none of them back.
    with Recorder(crypto) as aioquic_made:
        send(server, client, now, [PAYLOAD], aioquic=True)
        send(server, client, now + 0.01, small, aioquic=True)
    assert sender.fast_packets == 0 and len(aioquic_made.calls) == 2
    fast_before = sender.fast_packets
    with Recorder(crypto) as fast_made:
        send(server, client, now + 0.02, [PAYLOAD])
        send(server, client, now + 0.03, small)
    assert sender.fast_packets == fast_before + 2
    assert received(client) == [PAYLOAD, *small, PAYLOAD, *small]
    for (h_old, p_old, n_old), (h_new, p_new, n_new) in zip(
        aioquic_made.calls, fast_made.calls, strict=True
    ):
        assert p_new == p_old
        assert h_new[:-2] == h_old[:-2]  # first byte (spin bit, key phase), cid
        assert h_new[-2:] == (n_new & 0xFFFF).to_bytes(2, "big")
        assert n_new == n_old + 2


def test_accounting_equals_aioquics(tmp_path):
    client, server, wire = connected(tmp_path)
    sender = quic_fastpath.install(server)
    space = server._spaces[tls.Epoch.ONE_RTT]
    now = wire.now
    send(server, client, now, [PAYLOAD])
    in_flight = server._loss.bytes_in_flight
    number = server._packet_number
    fast_before = sender.fast_packets
    out = send(server, client, now, [PAYLOAD, PAYLOAD])
    assert sender.fast_packets == fast_before + 2
    assert server._packet_number == number + 2
    assert server._loss.bytes_in_flight == in_flight + sum(len(d) for d, _ in out)
    for packet_number in (number, number + 1):
        record = space.sent_packets[packet_number]
        assert record.in_flight and record.is_ack_eliciting
        assert record.sent_time == now and record.sent_bytes == len(out[0][0])
    # the client's ACK reaches the server and clears them
    for data, _ in client.datagrams_to_send(now + 0.03):
        server.receive_datagram(data, CLIENT, now + 0.03)
    assert number not in space.sent_packets and number + 1 not in space.sent_packets
    assert server._loss.bytes_in_flight == 0


def test_the_pacer_holds_the_short_path_as_it_holds_aioquics(tmp_path):
    """A connection's pacer spaces the short path's packets as it spaces
    aioquic's: the same packets per call and the same next send time, call
    after call, from the same state."""
    client, server, wire = connected(tmp_path / "short")
    twin_client, twin, twin_wire = connected(tmp_path / "aioquic")
    sender = quic_fastpath.install(server)
    now = wire.now
    send(server, client, now, [PAYLOAD])
    send(twin, twin_client, now, [PAYLOAD])
    for _ in range(40):
        server.send_datagram_frame(PAYLOAD)
        twin.send_datagram_frame(PAYLOAD)
    held = 0
    for _ in range(200):
        if not server._datagrams_pending:
            break
        out = server.datagrams_to_send(now)
        twin_out = twin.datagrams_to_send(now)
        assert len(out) == len(twin_out)
        assert server._pacing_at == twin._pacing_at
        assert server._loss._pacer.bucket_time == twin._loss._pacer.bucket_time
        held += server._pacing_at is not None
        for a, b, sent in ((client, server, out), (twin_client, twin, twin_out)):
            for data, _ in sent:
                a.receive_datagram(data, SERVER, now)
            for data, _ in a.datagrams_to_send(now):  # the ACKs
                b.receive_datagram(data, CLIENT, now)
        now += 0.002
    assert not server._datagrams_pending and not twin._datagrams_pending
    assert sender.fast_packets > 0
    assert held  # the pacer did hold packets back


def test_anything_but_datagrams_and_an_ack_goes_through_aioquic(tmp_path):
    client, server, wire = connected(tmp_path)
    sender = quic_fastpath.install(server)
    now = wire.now
    send(server, client, now, [PAYLOAD])
    fast_before = sender.fast_packets
    # a request received: the ACK it is owed leads the short path's packet
    stream_id = client.get_next_available_stream_id()
    client.send_stream_data(stream_id, b"hello")
    for data, _ in client.datagrams_to_send(now):
        server.receive_datagram(data, CLIENT, now)
    assert server._spaces[tls.Epoch.ONE_RTT].ack_at is not None
    send(server, client, now + 0.03, [PAYLOAD])
    assert sender.fast_packets == fast_before + 1
    assert server._spaces[tls.Epoch.ONE_RTT].ack_at is None
    assert received(client) == [PAYLOAD, PAYLOAD]
    assert not client._spaces[tls.Epoch.ONE_RTT].ack_eliciting_in_flight
    # a receipt that makes a control frame due (the client retires the
    # connection id it used: NEW_CONNECTION_ID), a stream write of its own
    # and a PING: aioquic's method decides
    client.change_connection_id()
    for data, _ in client.datagrams_to_send(now + 0.04):
        server.receive_datagram(data, CLIENT, now + 0.04)
    assert any(not cid.was_sent for cid in server._host_cids)
    send(server, client, now + 0.04, [PAYLOAD])
    assert all(cid.was_sent for cid in server._host_cids)
    server.send_stream_data(1 if stream_id == 0 else 3, b"x")
    send(server, client, now + 0.05, [PAYLOAD])
    server.send_ping(7)
    send(server, client, now + 0.06, [PAYLOAD])
    assert sender.fast_packets == fast_before + 1
    send(server, client, now + 0.07, [PAYLOAD])
    assert sender.fast_packets == fast_before + 2


def _server_state(server) -> tuple:
    space = server._spaces[tls.Epoch.ONE_RTT]
    loss = server._loss
    return (
        server._packet_number,
        loss.bytes_in_flight,
        loss.congestion_window,
        server._pacing_at,
        loss._pacer.bucket_time,
        space.ack_at,
        sorted(space.sent_packets),
        list(server._datagrams_pending),
        server._close_at,
    )


def test_after_a_receipt_the_short_path_decides_as_aioquic(tmp_path):
    """A subscriber acknowledges every burst of media, so after most receipts
    the sender looks at the connection's state instead of asking aioquic's
    method. Twins, the same traffic: one server sends through the short
    path, the other through aioquic's method alone; the client acknowledges
    as quicmeet's does, sends requests (enough for MAX_DATA, MAX_STREAM_DATA
    and MAX_STREAMS to fall due) and PINGs; one server packet in forty and
    one client packet in thirteen are lost. Every call of the two servers
    encrypts the same plaintexts and leaves the same state, and most packets
    take the short path."""
    short_client, short, wire = connected(tmp_path / "short")
    twin_client, twin, twin_wire = connected(tmp_path / "aioquic")
    for client, server in ((short_client, short), (twin_client, twin)):
        received(client)
        ack_delay.install(client)
        ack_delay.install(server)
    short_acks.install(short)
    sender = quic_fastpath.install(short)
    now = wire.now
    assert twin_wire.now == now
    with (
        Recorder(short._cryptos[tls.Epoch.ONE_RTT]) as short_made,
        Recorder(twin._cryptos[tls.Epoch.ONE_RTT]) as twin_made,
    ):
        for step in range(600):
            now += 0.004
            # Bursts of every size, some beyond the congestion window, and a
            # second call soon after the first, which the pacer may hold.
            burst = 60 if step % 50 == 17 else step % 3 + 1
            outs: list[list] = [[], []]
            for at in (now, now + 0.0005):
                for k, server in enumerate((short, twin)):
                    timer = server.get_timer()
                    if timer is not None and timer <= at:
                        server.handle_timer(at)
                    for _ in range(burst if at == now else step % 2):
                        server.send_datagram_frame(PAYLOAD[: 200 + step % 950])
                    outs[k] += server.datagrams_to_send(at)
                assert [c[1:] for c in short_made.calls] == [
                    c[1:] for c in twin_made.calls
                ]
                assert _server_state(short) == _server_state(twin)
                short_made.calls.clear()
                twin_made.calls.clear()
            for (client, server), out in zip(
                ((short_client, short), (twin_client, twin)), outs, strict=True
            ):
                for k, (data, _) in enumerate(out):
                    if (3 * step + k) % 40:
                        client.receive_datagram(data, SERVER, now)
                if step % 7 == 3:  # a request; they add up to flow-control updates
                    stream_id = client.get_next_available_stream_id()
                    client.send_stream_data(stream_id, b"r" * 24_000, end_stream=True)
                if step % 11 == 5:
                    client.send_ping(step)
                timer = client.get_timer()
                if timer is not None and timer <= now + 0.002:
                    client.handle_timer(now + 0.002)
                for k, (data, _) in enumerate(client.datagrams_to_send(now + 0.002)):
                    if (step + k) % 13:
                        server.receive_datagram(data, CLIENT, now + 0.002)
                while server.next_event() is not None:
                    pass
            assert received(short_client) == received(twin_client)
    assert sender.fast_packets > short._packet_number // 2
    assert short._local_max_data.sent > short._local_max_data.value // 2 > 0


def test_an_overdue_ack_leaves_while_the_pacer_holds_as_in_aioquic(tmp_path):
    """aioquic does not pace a packet that carries an overdue ACK: the short
    path sends it too, with what datagrams fit, and then waits as aioquic's
    does. Twins from the same state, compared call by call: a burst empties
    the pacer's bucket, then a request read 2 ms earlier is handed over (its
    ACK was due 1 ms after it), and the next call comes at once."""
    pairs = [connected(tmp_path / name)[:2] for name in ("short", "aioquic")]
    (_, short), (_, twin) = pairs
    sender = quic_fastpath.install(short)
    now = 1.0
    with (
        Recorder(short._cryptos[tls.Epoch.ONE_RTT]) as short_made,
        Recorder(twin._cryptos[tls.Epoch.ONE_RTT]) as twin_made,
    ):
        for _ in range(3):
            outs = []
            for client, server in pairs:
                received(client)
                for _ in range(12):
                    server.send_datagram_frame(PAYLOAD)
                outs.append(server.datagrams_to_send(now))
                assert server._pacing_at is not None  # the bucket is empty
                client.send_stream_data(0, b"a request")
                for data, _ in client.datagrams_to_send(now - 0.002):
                    server.receive_datagram(data, CLIENT, now - 0.002)
                assert server._spaces[tls.Epoch.ONE_RTT].ack_at < now
                assert server._loss._pacer.next_send_time(now=now) is not None
                outs.append(server.datagrams_to_send(now))
                assert server._spaces[tls.Epoch.ONE_RTT].ack_at is None
                for data, _ in outs[-2] + outs[-1]:
                    client.receive_datagram(data, SERVER, now)
                for data, _ in client.datagrams_to_send(now + 0.001):
                    server.receive_datagram(data, CLIENT, now + 0.001)
            assert [c[1:] for c in short_made.calls] == [c[1:] for c in twin_made.calls]
            assert [len(out) for out in outs[:2]] == [len(out) for out in outs[2:]]
            assert len(outs[1]) == 1  # the ACK's packet, unpaced
            assert _server_state(short) == _server_state(twin)
            short_made.calls.clear()
            twin_made.calls.clear()
            now += 0.01
    assert sender.fast_packets >= 3


def test_congestion_window_and_key_update(tmp_path):
    client, server, wire = connected(tmp_path)
    sender = quic_fastpath.install(server)
    now = wire.now
    send(server, client, now, [PAYLOAD])
    window = server._loss.congestion_window - server._loss.bytes_in_flight
    fast_before = sender.fast_packets
    out = send(server, client, now, [PAYLOAD] * 200)
    assert sender.fast_packets - fast_before == len(out) > 0
    assert sum(len(d) for d, _ in out) <= window
    assert server._datagrams_pending  # the rest waits for room
    assert len(received(client)) == 1 + len(out)
    server.request_key_update()
    phase = server._cryptos[tls.Epoch.ONE_RTT].key_phase
    wire.now = now + 0.05
    wire.run(0.5)
    assert received(client) == [PAYLOAD] * (200 - len(out))
    assert client._cryptos[tls.Epoch.ONE_RTT].key_phase == phase


def test_a_path_mtu_probe_through_the_short_path(tmp_path):
    """udpio's probe raises the packet size for one transmit and finds its
    packet among the sent records by size: the short path builds it at
    exactly that size, and its acknowledgement is reported."""
    from codec.pmtu import PADDING_MARK
    from udpio import mtu_probe

    client, server, wire = connected(tmp_path)
    sender = quic_fastpath.install(server)
    now = wire.now
    send(server, client, now, [PAYLOAD])
    wire.sizes.clear()
    verdicts: list[bool] = []
    fast_before = sender.fast_packets
    sent = mtu_probe.send_mtu_probe(
        server, 1452, PADDING_MARK, lambda: wire.send(server), verdicts.append
    )
    assert sent and wire.sizes == [1452] and sender.fast_packets == fast_before + 1
    wire.run(2.0)
    assert verdicts == [True]


# -- the short ACK path --------------------------------------------------------


def idle_server(tmp_path: Path):
    """A pair past its handshake whose server side is trimmed and acknowledges
    as the server's connections do, with the short ACK path."""
    from server.quic_adapter import release_handshake_state

    client, server, wire = connected(tmp_path)
    received(client)
    release_handshake_state(server)
    ack_delay.install(server)
    assert short_acks.install(server) is server
    return client, server, wire


class Shadowed:
    """Runs aioquic's own ``datagrams_to_send`` before every call the short
    ACK path takes, from the same state, and compares what each encrypted
    and left behind; the peer receives the short path's packet."""

    def __init__(self, server) -> None:
        self.server, self.compared = server, 0
        self.nothing = 0
        """Calls that built nothing without asking aioquic (compared too)."""

    def _state(self) -> dict:
        server = self.server
        space = server._spaces[tls.Epoch.ONE_RTT]
        pacer = server._loss._pacer
        return {
            "number": server._packet_number,
            "pacing_at": server._pacing_at,
            "ack_at": space.ack_at,
            "ack_queue": list(space.ack_queue),
            "bucket": (pacer.bucket_time, pacer.evaluation_time),
            "ack_eliciting_in_flight": space.ack_eliciting_in_flight,
            "bytes_in_flight": server._loss.bytes_in_flight,
            "close_at": server._close_at,
            "sent": {
                number: (
                    p.in_flight,
                    p.is_ack_eliciting,
                    p.is_crypto_packet,
                    p.sent_time,
                    p.sent_bytes,
                    [(h.__name__, args) for h, args in p.delivery_handlers],
                )
                for number, p in space.sent_packets.items()
            },
        }

    def _restore(self, state: dict) -> None:
        server = self.server
        space = server._spaces[tls.Epoch.ONE_RTT]
        pacer = server._loss._pacer
        server._packet_number = state["number"]
        server._pacing_at = state["pacing_at"]
        space.ack_at = state["ack_at"]
        pacer.bucket_time, pacer.evaluation_time = state["bucket"]
        for number in list(space.sent_packets):
            if number not in state["sent"]:
                del space.sent_packets[number]

    def send(self, now: float) -> list:
        server = self.server
        space = server._spaces[tls.Epoch.ONE_RTT]
        due = space.ack_at is not None and space.ack_at <= now
        if (
            not due
            and short_path._nothing_due(server, now)
            and server._loss._pacer.next_send_time(now=now) is None
        ):
            # aioquic's method, from the same state, builds and changes nothing
            before = self._state()
            theirs = QuicConnection.datagrams_to_send(server, now)
            after_theirs = self._state()
            self._restore(before)
            ours = server.datagrams_to_send(now)
            assert theirs == [] and ours == []
            assert self._state() == after_theirs
            self.nothing += 1
            return ours
        if not (due and short_acks.only_an_ack_due(server, space)):
            before = short_acks.ShortAcks.sent
            out = server.datagrams_to_send(now)
            assert short_acks.ShortAcks.sent == before
            return out
        crypto = server._cryptos[tls.Epoch.ONE_RTT]
        before = self._state()
        with Recorder(crypto) as aioquic_made:
            theirs = QuicConnection.datagrams_to_send(server, now)
        after_theirs = self._state()
        self._restore(before)
        assert self._state() == before
        sent = short_acks.ShortAcks.sent
        with Recorder(crypto) as short_made:
            ours = server.datagrams_to_send(now)
        assert short_acks.ShortAcks.sent == sent + (1 if ours else 0)
        assert short_made.calls == aioquic_made.calls
        assert [(len(d), a) for d, a in ours] == [(len(d), a) for d, a in theirs]
        assert self._state() == after_theirs
        self.compared += 1
        return ours


def ping(client, server, now: float, drop: bool = False) -> None:
    client.send_ping(1)
    for data, _ in client.datagrams_to_send(now):
        if not drop:
            server.receive_datagram(data, CLIENT, now)


def test_an_ack_only_packet_matches_aioquics_and_is_read_by_its_peer(tmp_path):
    client, server, wire = idle_server(tmp_path)
    shadow = Shadowed(server)
    now = wire.now
    for step in range(40):  # keepalives, some lost, one key update
        now += 0.5
        ping(client, server, now, drop=step % 7 == 3)
        if step == 20:
            server.request_key_update()
        for data, _ in shadow.send(now):
            client.receive_datagram(data, SERVER, now)
        timer = client.get_timer()
        if timer is not None and timer <= now:
            client.handle_timer(now)
    assert shadow.compared >= 30
    # the client took every ACK: nothing of its own is left in flight
    assert client._loss.bytes_in_flight == 0
    space = client._spaces[tls.Epoch.ONE_RTT]
    assert space.ack_eliciting_in_flight == 0
    # a key update made in the middle is read by the peer
    assert client._cryptos[tls.Epoch.ONE_RTT].key_phase == (
        server._cryptos[tls.Epoch.ONE_RTT].key_phase
    )


def test_an_ack_held_by_the_pacer_and_one_owed_after_datagrams(tmp_path):
    client, server, wire = idle_server(tmp_path)
    shadow = Shadowed(server)
    now = wire.now + 0.5
    server.send_datagram_frame(PAYLOAD)
    for data, _ in shadow.send(now):
        client.receive_datagram(data, SERVER, now)
    # a burst empties the pacer's bucket; a PING at the same instant finds its
    # ACK held by pacing, as aioquic holds it
    for _ in range(30):
        server.send_datagram_frame(PAYLOAD)
    burst = shadow.send(now)
    assert server._datagrams_pending or server._pacing_at is not None
    held = shadow.compared
    server._datagrams_pending.clear()
    ping(client, server, now)
    assert shadow.send(now) == [] and server._pacing_at is not None
    assert shadow.compared == held + 1
    later = server._pacing_at + 0.001
    assert len(shadow.send(later)) == 1
    for data, _ in burst:
        client.receive_datagram(data, SERVER, later)
    assert len(received(client)) == 1 + len(burst)


def test_anything_besides_the_ack_goes_through_aioquic(tmp_path):
    client, server, wire = idle_server(tmp_path)
    shadow = Shadowed(server)
    now = wire.now + 0.5
    sent = short_acks.ShortAcks.sent

    def answered(now: float) -> list:
        out = shadow.send(now)
        for data, _ in out:
            client.receive_datagram(data, SERVER, now)
        return out

    # stream data of the server's own carries the ACK
    ping(client, server, now)
    server.send_stream_data(1, b"x" * 10)
    assert len(answered(now)) == 1 and short_acks.ShortAcks.sent == sent
    # a queued DATAGRAM, a PING of the server's own
    ping(client, server, now + 0.5)
    server.send_datagram_frame(b"z")
    answered(now + 0.5)
    ping(client, server, now + 1.0)
    server.send_ping(9)
    answered(now + 1.0)
    assert short_acks.ShortAcks.sent == sent
    # and back to the short path when nothing else is due (this PING's packet
    # acknowledges the server's: an event, so its ACK waits the delay)
    ping(client, server, now + 1.5)
    nothing = shadow.nothing
    assert answered(now + 1.5) == []
    assert shadow.nothing == nothing + 1  # the ACK not due yet: no builder
    assert len(answered(now + 1.5 + ack_delay.ACK_DELAY)) == 1
    assert short_acks.ShortAcks.sent == sent + 1


@pytest.mark.parametrize(
    ("streams", "size", "unidirectional", "lose", "short"),
    [
        (1, 3_000_000, False, 0, 3),  # MAX_STREAM_DATA and MAX_DATA
        (6, 200_000, False, 0, 3),  # MAX_DATA alone
        (300, 10, True, 0, 0),  # MAX_STREAMS (uni), finished streams discarded
        (300, 10, True, 3, 0),  # and every third packet lost: limits sent again
    ],
)
def test_uploads_are_acknowledged_and_their_limits_raised(
    tmp_path, streams, size, unidirectional, lose, short
):
    """The server's side of uploads, sending only when an ACK is due: most
    of its packets hold the ACK alone, and every MAX_DATA, MAX_STREAM_DATA
    and MAX_STREAMS the uploads need goes with one (by aioquic's method; the
    shadow checks each short one)."""
    client, server, wire = idle_server(tmp_path)
    shadow = Shadowed(server)
    data = {}
    for _ in range(streams):
        stream_id = client.get_next_available_stream_id(unidirectional)
        data[stream_id] = os.urandom(size)
        client.send_stream_data(stream_id, data[stream_id], end_stream=True)
    got: dict[int, bytearray] = {stream_id: bytearray() for stream_id in data}
    total = streams * size
    now = wire.now
    sent = 0
    for _ in range(20_000):
        for datagram, _ in client.datagrams_to_send(now):
            server.receive_datagram(datagram, CLIENT, now)
        while (event := server.next_event()) is not None:
            if isinstance(event, StreamDataReceived):
                got[event.stream_id] += event.data
                total -= len(event.data)
        ack_at = server._spaces[tls.Epoch.ONE_RTT].ack_at
        if ack_at is not None and ack_at <= now:
            # only then: each limit the receipt raised waits for the ACK
            for datagram, _ in shadow.send(now):
                sent += 1
                if not (lose and sent % lose == 0):
                    client.receive_datagram(datagram, SERVER, now)
        if total == 0:
            break
        timers = [t for t in (client.get_timer(), server.get_timer()) if t]
        now = min([now + 0.001, *timers])
        for conn in (client, server):
            timer = conn.get_timer()
            if timer is not None and timer <= now:
                conn.handle_timer(now)
    assert got == data
    assert shadow.compared >= short


def test_the_ack_of_ack_trigger_goes_through_aioquic(tmp_path):
    """With more than one range to acknowledge, aioquic adds a PING to every
    eighth packet (so that the peer's ACK lets it drop old ranges)."""
    client, server, wire = idle_server(tmp_path)
    shadow = Shadowed(server)
    now = wire.now
    ping(client, server, now + 0.1, drop=True)  # a gap: two ranges from now on
    seen_trigger = False
    for _ in range(20):
        now += 0.5
        ping(client, server, now)
        ranges = len(server._spaces[tls.Epoch.ONE_RTT].ack_queue)
        trigger = ranges > 1 and server._packet_number % 8 == 0
        sent = short_acks.ShortAcks.sent
        out = shadow.send(now)
        assert len(out) == 1
        assert (short_acks.ShortAcks.sent == sent) == trigger
        seen_trigger |= trigger
        for data, _ in out:
            client.receive_datagram(data, SERVER, now)
    assert seen_trigger


def test_a_clients_acks_and_empty_calls_match_aioquics(tmp_path):
    """The client has the short ACK path too (``client.transport``). Its
    server pushes events on a stream, answers requests, sends DATAGRAMs and
    PINGs; the client sends a request now and then; one packet in seventeen
    is lost one way, one in thirteen the other. Every call of the client's
    that the short path answers (an ACK alone, or nothing) is compared with
    aioquic's method from the same state; the rest go through the stream
    path or aioquic's. Everything sent arrives, and most of the client's
    calls are answered on the short path."""
    client, server, wire = connected(tmp_path)
    received(client)
    for quic in (client, server):
        ack_delay.install(quic)
        short_path.install(quic)
    assert short_acks.install(client) is client
    shadow = Shadowed(client)
    events = server.get_next_available_stream_id(is_unidirectional=True)
    pushed, replies, asked = bytearray(), {}, []
    got: dict[int, bytearray] = {}

    def exchange(now: float, later: float, lost: int) -> None:
        """The server's packets to the client at ``now``, the client's (its
        calls shadowed) to the server at ``later``, the server's replies,
        both ends' timers; the ``lost``-th packets lost (0: none)."""
        for k, (data, _) in enumerate(server.datagrams_to_send(now)):
            if not lost or (lost + k) % 17:
                client.receive_datagram(data, SERVER, now)
        while (event := client.next_event()) is not None:
            if isinstance(event, StreamDataReceived):
                got.setdefault(event.stream_id, bytearray()).extend(event.data)
        for k, (data, _) in enumerate(shadow.send(later)):
            if not lost or (lost + k) % 13:
                server.receive_datagram(data, CLIENT, later)
        while (event := server.next_event()) is not None:
            if isinstance(event, StreamDataReceived) and event.end_stream:
                replies[event.stream_id] = b"a" * (event.stream_id % 300)
                server.send_stream_data(
                    event.stream_id, replies[event.stream_id], end_stream=True
                )
        for quic in (client, server):
            timer = quic.get_timer()
            if timer is not None and timer <= later:
                quic.handle_timer(later)

    now = wire.now
    for step in range(1, 601):
        now += 0.007
        if step % 3 == 0:
            chunk = bytes([step % 251]) * (80 + step % 700)
            pushed += chunk
            server.send_stream_data(events, chunk)
        if step % 4 == 1:
            server.send_datagram_frame(PAYLOAD[: 100 + step % 900])
        if step % 11 == 5:
            server.send_ping(step)
        if step % 5 == 2:
            request = client.get_next_available_stream_id()
            client.send_stream_data(request, b"q" * (50 + step), end_stream=True)
            asked.append(request)
        exchange(now, now + 0.0035, lost=step)
    for _ in range(400):  # no more loss: let retransmissions finish
        now += 0.01
        exchange(now, now, lost=0)
    assert got.pop(events) == pushed
    assert sorted(replies) == asked
    assert {sid: bytes(data) for sid, data in got.items()} == replies
    assert shadow.compared >= 50 and shadow.nothing >= 100


# -- a keepalive PING on the short path (udpio.short_path.send_ping) ----------


class PingShadow(Shadowed):
    """:class:`Shadowed` for an ack-eliciting packet: the loss detection and
    congestion state a PING moves is compared and rewound too."""

    def _state(self) -> dict:
        quic = self.server
        loss = quic._loss
        return {
            **super()._state(),
            "cc_bytes_in_flight": loss._cc.bytes_in_flight,
            "last_ack_eliciting": loss._time_of_last_sent_ack_eliciting_packet,
            "sent_since_receipt": quic._ack_eliciting_sent_since_receipt,
            "ping_pending": list(quic._ping_pending),
        }

    def _restore(self, state: dict) -> None:
        super()._restore(state)
        quic = self.server
        loss = quic._loss
        space = quic._spaces[tls.Epoch.ONE_RTT]
        space.ack_eliciting_in_flight = state["ack_eliciting_in_flight"]
        loss._cc.bytes_in_flight = state["cc_bytes_in_flight"]
        loss._time_of_last_sent_ack_eliciting_packet = state["last_ack_eliciting"]
        quic._ack_eliciting_sent_since_receipt = state["sent_since_receipt"]
        quic._close_at = state["close_at"]
        quic._ping_pending[:] = state["ping_pending"]

    def ping(self, now: float, uid: int) -> tuple[list, bool]:
        """A keepalive PING the short way when it applies (checked against
        aioquic's way from the same state), else aioquic's; and which."""
        quic = self.server
        crypto = quic._cryptos[tls.Epoch.ONE_RTT]
        before = self._state()
        quic.send_ping(uid)
        with Recorder(crypto) as aioquic_made:
            theirs = QuicConnection.datagrams_to_send(quic, now)
        after_theirs = self._state()
        self._restore(before)
        assert self._state() == before
        with Recorder(crypto) as short_made:
            ours = short_path.send_ping(quic, now, uid)
        if ours is None:
            assert self._state() == before  # nothing changed: aioquic's way
            quic.send_ping(uid)
            return quic.datagrams_to_send(now), False
        assert short_made.calls == aioquic_made.calls
        assert [(len(d), a) for d, a in ours] == [(len(d), a) for d, a in theirs]
        assert self._state() == after_theirs
        self.compared += 1
        return ours, True


def test_a_keepalive_ping_matches_aioquics_and_is_acknowledged(tmp_path):
    client, server, wire = idle_server(tmp_path)
    shadow = PingShadow(client)
    now = wire.now
    acknowledged, sent, lost = [], [], []
    for step in range(40):  # keepalives, some lost, one key update
        now += 0.5
        if step == 20:
            client.request_key_update()
        out, short = shadow.ping(now, step)
        assert len(out) == 1
        sent.append(step)
        if step % 7 == 3:
            lost.append(step)
        else:
            for data, _ in out:
                server.receive_datagram(data, CLIENT, now)
        # the server's ACK, after its delay
        now += 0.03
        for data, _ in server.datagrams_to_send(now):
            client.receive_datagram(data, SERVER, now)
        for conn in (client, server):
            timer = conn.get_timer()
            if timer is not None and timer <= now:
                conn.handle_timer(now)
                for data, _ in conn.datagrams_to_send(now):
                    peer = server if conn is client else client
                    peer.receive_datagram(
                        data, SERVER if peer is client else CLIENT, now
                    )
        while (event := client.next_event()) is not None:
            if isinstance(event, PingAcknowledged):
                acknowledged.append(event.uid)
    assert shadow.compared >= 30
    # every PING that arrived was acknowledged as aioquic's would be
    assert set(acknowledged) >= set(sent) - set(lost)
    assert client._spaces[tls.Epoch.ONE_RTT].ack_eliciting_in_flight <= 1
    assert client._cryptos[tls.Epoch.ONE_RTT].key_phase == (
        server._cryptos[tls.Epoch.ONE_RTT].key_phase
    )


def test_a_ping_with_anything_else_due_goes_through_aioquic(tmp_path):
    client, server, wire = idle_server(tmp_path)
    now = wire.now + 0.5
    state = PingShadow(client)
    # a chat request waiting on a stream
    client.send_stream_data(0, b"hello")
    before = state._state()
    assert short_path.send_ping(client, now) is None
    assert state._state() == before
    client.datagrams_to_send(now)
    # an ACK owed to the server
    server.send_ping(5)
    for data, _ in server.datagrams_to_send(now):
        client.receive_datagram(data, SERVER, now)
    assert client._spaces[tls.Epoch.ONE_RTT].ack_at is not None
    assert short_path.send_ping(client, now) is None
    client.datagrams_to_send(now + 0.1)
    # a congestion window without room
    client._loss._cc.congestion_window = client._loss.bytes_in_flight
    assert short_path.send_ping(client, now + 0.2) is None


def test_nothing_to_send_holds_whenever_aioquic_builds_nothing(tmp_path):
    """``short_path.nothing_to_send`` against aioquic's ``datagrams_to_send``
    from the same state, on a client that PINGs, chats, is PINGed and loses
    packets, through a key update: true only where aioquic's call then
    builds nothing and changes nothing (what it would change, the predicate
    did); false, having moved nothing but the pacer's bucket, wherever
    aioquic builds a packet."""
    client, server, wire = idle_server(tmp_path)
    shadow = PingShadow(client)
    now = wire.now
    verdicts = []

    waiting = 0

    def check(now: float) -> None:
        nonlocal waiting
        before = shadow._state()
        ack_at = client._spaces[tls.Epoch.ONE_RTT].ack_at
        nothing = short_path.nothing_to_send(client, now)
        waiting += nothing and ack_at is not None
        ours = shadow._state()
        if not nothing:  # nothing moved but the pacer's bucket
            assert {**ours, "bucket": None} == {**before, "bucket": None}
        theirs = client.datagrams_to_send(now)
        verdicts.append((nothing, bool(theirs)))
        if nothing:  # aioquic's call, after it, builds and changes nothing
            assert theirs == [] and shadow._state() == ours
        for data, _ in theirs:
            server.receive_datagram(data, CLIENT, now)

    for step in range(60):
        now += 0.2
        if step == 30:
            client.request_key_update()
        if step % 5 == 0:
            client.send_ping(step)
        elif step % 5 == 1:
            client.send_stream_data(0, b"chat %d" % step)
        elif step % 5 == 2:
            server.send_ping(step)
        check(now)
        now += 0.03
        for data, _ in server.datagrams_to_send(now):
            if step % 9 != 4:  # some of the server's packets are lost
                client.receive_datagram(data, SERVER, now)
        check(now)
        for conn in (client, server):
            timer = conn.get_timer()
            if timer is not None and timer <= now:
                conn.handle_timer(now)
        check(now)
    nothing_built = [built for nothing, built in verdicts if nothing]
    assert len(nothing_built) >= 60 and not any(nothing_built)
    assert waiting >= 10  # of them with an ACK owed, not due yet
    assert sum(built for nothing, built in verdicts if not nothing) >= 30
