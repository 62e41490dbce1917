"""The short path for stream packets (:mod:`udpio.short_path`) against
aioquic's own method: two pairs of real aioquic connections on a virtual clock
run the same transfer, one with the short path on its sending side; every
packet either builds (plaintext, header, packet number) and the state after
each call (sent records, flight, pacer, ACK state, stream sender, flow
control, queue order) must be the same, and the data must arrive whole."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from aioquic import tls
from aioquic.quic.events import StreamDataReceived

from udpio import ack_delay, rtt_samples, short_path, short_receive

from .test_mtu_probe import CLIENT, SERVER, Wire, pair

MTU = 1500


class Twin:
    """A client and a server connected on a virtual clock, both acknowledging
    as quicmeet's ends do; with ``short``, the short path on both; with
    ``receive``, the short receive path (:mod:`udpio.short_receive`) on both;
    with ``acks``, :mod:`udpio.rtt_samples`' receipt of ACKs on both."""

    def __init__(
        self, tmp_path: Path, short: bool, receive: bool = False, acks: bool = False
    ) -> None:
        self.client, self.server = pair(tmp_path)
        self.client.connect(SERVER, now=0.0)
        wire = Wire(self.client, self.server, MTU)
        wire.run(1.0)
        self.now = wire.now
        for quic in (self.client, self.server):
            if acks:
                assert rtt_samples.install(quic) is quic._loss
            if receive:
                assert short_receive.install(quic) is quic
            ack_delay.install(quic)
            if short:
                assert short_path.install(quic) is quic
        self.trace: list = []
        self.got: dict[tuple[str, int], bytearray] = {}
        """What each side received, by its name and the stream id."""
        for quic in (self.client, self.server):
            self._recording(quic)
        while self.server.next_event() is not None:
            pass
        while self.client.next_event() is not None:
            pass

    def _recording(self, quic) -> None:
        crypto = quic._cryptos[tls.Epoch.ONE_RTT]
        original = crypto.encrypt_packet
        cid_end = 1 + len(quic._peer_cid.cid)
        trace = self.trace

        def record(header, payload, number):
            trace.append((quic is self.client, header[0], header[cid_end:], payload))
            return original(header, payload, number)

        crypto.encrypt_packet = record

    def state(self, quic) -> tuple:
        space = quic._spaces[tls.Epoch.ONE_RTT]
        pacer = quic._loss._pacer
        return (
            quic._packet_number,
            quic._pacing_at,
            space.ack_at,
            list(space.ack_queue),
            (pacer.bucket_time, pacer.evaluation_time),
            space.ack_eliciting_in_flight,
            quic._loss.bytes_in_flight,
            quic._close_at,
            quic._remote_max_data_used,
            [
                (
                    stream.stream_id,
                    stream.sender.highest_offset,
                    list(stream.sender._pending),
                    stream.sender.buffer_is_empty,
                )
                for stream in quic._streams_queue
            ],
            [
                (
                    stream.stream_id,
                    stream.sender._buffer_start,
                    len(stream.sender._buffer),
                    list(stream.sender._acked),
                    stream.sender._acked_fin,
                    stream.sender.is_finished,
                )
                for stream in quic._streams.values()
            ],
            (
                quic._loss._rtt_latest,
                quic._loss._rtt_min,
                quic._loss._rtt_smoothed,
                quic._loss._rtt_variance,
                quic._loss._pto_count,
                quic._loss._cc.congestion_window,
                quic._loss._pacer.packet_time,
            ),
            {
                number: (
                    p.in_flight,
                    p.is_ack_eliciting,
                    p.sent_time,
                    p.sent_bytes,
                    [
                        (h.__name__, [a for a in args if isinstance(a, int)])
                        for h, args in p.delivery_handlers
                    ],
                )
                for number, p in space.sent_packets.items()
            },
        )

    def step(self, lose) -> None:
        """One turn: each side sends what it may (each datagram dropped when
        ``lose(from_client, index)``), receives, and handles its timers."""
        for sender, receiver, source in (
            (self.client, self.server, CLIENT),
            (self.server, self.client, SERVER),
        ):
            out = sender.datagrams_to_send(self.now)
            self.trace.append(("state", sender is self.client, self.state(sender)))
            for data, _ in out:
                self.sent = getattr(self, "sent", 0) + 1
                if not lose(sender is self.client, self.sent):
                    receiver.receive_datagram(data, source, self.now)
                    self.trace.append(("received", receipt_state(receiver)))
            while (event := receiver.next_event()) is not None:
                if isinstance(event, StreamDataReceived):
                    key = ("client" if receiver is self.client else "server",)
                    self.got.setdefault((*key, event.stream_id), bytearray()).extend(
                        event.data
                    )
        timers = [t for t in (self.client.get_timer(), self.server.get_timer()) if t]
        # at least 1 µs on: an ACK due at this very moment is held by the
        # pacer (aioquic paces unless it is overdue), and its timer says now
        self.now = max(min([self.now + 0.002, *timers]), self.now + 1e-6)
        for quic in (self.client, self.server):
            timer = quic.get_timer()
            if timer is not None and timer <= self.now:
                quic.handle_timer(self.now)


def receipt_state(quic) -> tuple:
    """What receiving a datagram changes in a connection."""
    space = quic._spaces[tls.Epoch.ONE_RTT]
    loss = quic._loss
    return (
        quic._state,
        quic._close_pending,
        tuple(
            getattr(quic._close_event, name, None)
            for name in ("error_code", "frame_type", "reason_phrase")
        ),
        space.expected_packet_number,
        space.largest_received_packet,
        space.largest_received_time,
        list(space.ack_queue),
        space.ack_at,
        quic._close_at,
        quic._ack_eliciting_sent_since_receipt,
        (quic._spin_bit, quic._spin_highest_pn),
        quic._local_max_data.used,
        quic._remote_max_data,
        [c.sequence_number for c in quic._host_cids if c.cid == quic.host_cid],
        (loss.bytes_in_flight, loss._rtt_latest, loss._rtt_smoothed),
        sorted(space.sent_packets),
        {
            stream_id: (stream.receiver.highest_offset, stream.receiver.is_finished)
            for stream_id, stream in quic._streams.items()
        },
        [
            (
                type(event).__name__,
                getattr(event, "stream_id", None),
                getattr(event, "data", None),
                getattr(event, "end_stream", None),
                getattr(event, "error_code", None),
                getattr(event, "reason_phrase", None),
            )
            for event in quic._events
        ],
    )


def run_twins(
    tmp_path: Path,
    script,
    expected: dict,
    lose=lambda from_client, n: False,
    variant: dict | None = None,
):
    """Runs ``script(twin, step)`` before each step of both twins until each
    has received ``expected`` ({(receiver, stream id): bytes}); returns them,
    and how many packets the short path built, once every step matched. The
    second twin has the short send path, or ``variant`` (Twin's keywords)."""
    for path in (tmp_path / "aioquic", tmp_path / "short"):
        path.mkdir()
    twins = [
        Twin(tmp_path / "aioquic", short=False),
        Twin(tmp_path / "short", **(variant or {"short": True})),
    ]
    before = short_path.ShortStreams.sent
    for index in range(50_000):
        for twin in twins:
            script(twin, index)
            twin.step(lose)
        theirs, ours = (twin.trace for twin in twins)
        assert ours == theirs, f"step {index}"
        theirs.clear()
        ours.clear()
        if all(twin.got == expected for twin in twins):
            break
    for twin in twins:
        assert twin.got.keys() == expected.keys()
        for key, data in expected.items():
            assert bytes(twin.got[key]) == data, key
    return short_path.ShortStreams.sent - before


def test_an_upload_and_a_download_match_aioquics_packets(tmp_path):
    up, down = os.urandom(1_000_000), os.urandom(700_000)

    def script(twin, index):
        # One stream starts at a time: when two send in one packet, aioquic's
        # next service order among them is a set's (its hash, by address),
        # which differs between the twins.
        if index == 0:
            twin.client.send_stream_data(0, b"give me the file", end_stream=True)
        if index == 1:
            twin.client.send_stream_data(4, up, end_stream=True)
        if index == 5:  # the server's own stream
            stream_id = twin.server.get_next_available_stream_id()
            twin.server.send_stream_data(stream_id, down, end_stream=True)

    expected = {
        ("server", 0): b"give me the file",
        ("server", 4): up,
        ("client", 1): down,
    }
    short = run_twins(tmp_path, script, expected)
    # most packets on the short path (the two streams overlap for a while,
    # each ACK-of-ACK PING and each limit goes through aioquic's method)
    assert short > 0.6 * (len(up) + len(down)) / 1400


@pytest.mark.parametrize("every", [7, 23])
def test_a_lossy_upload_retransmits_as_aioquic_does(tmp_path, every):
    up = os.urandom(1_500_000)

    def script(twin, index):
        if index == 0:
            twin.client.send_stream_data(0, up, end_stream=True)

    short = run_twins(
        tmp_path, script, {("server", 0): up}, lambda client, n: n % every == 0
    )
    assert short > 0.3 * len(up) / 1400


def test_small_writes_fins_alone_and_a_key_update(tmp_path):
    """Requests of a few bytes on several streams, a FIN sent on its own
    after the data, a key update in the middle of a transfer."""
    big = os.urandom(400_000)

    def script(twin, index):
        client = twin.client
        if index < 40 and index % 4 == 0:
            stream_id = client.get_next_available_stream_id()
            client.send_stream_data(stream_id, b"request %d" % index)
            client.send_stream_data(stream_id, b"", end_stream=True)
        if index == 50:
            client.send_stream_data(2, big)
        if index == 60:
            client.request_key_update()
        if index == 300:
            client.send_stream_data(2, b"", end_stream=True)

    expected = {("server", 4 * i): b"request %d" % (4 * i) for i in range(10)}
    expected["server", 2] = big
    short = run_twins(tmp_path, script, expected)
    assert short > 100


def test_a_small_congestion_window_and_pacing(tmp_path):
    """A window a few packets wide: calls end on a full window (an owed ACK
    then leaves alone) or on the pacer, as aioquic's do."""
    up = os.urandom(600_000)

    def script(twin, index):
        if index == 0:
            twin.client.send_stream_data(0, up, end_stream=True)
        cc = twin.client._loss._cc
        cc.congestion_window = min(cc.congestion_window, 4 * 1400)

    short = run_twins(
        tmp_path, script, {("server", 0): up}, lambda client, n: n % 97 == 0
    )
    assert short > 100


@pytest.mark.parametrize("every", [0, 7, 23])
def test_acks_handed_to_senders_in_runs_leave_them_as_aioquics(tmp_path, every):
    """udpio.rtt_samples takes ACKs as aioquic does but hands each stream's
    acknowledged data to its sender in runs: an upload and a download, small
    requests, lossy or not, must leave every sender, every RTT figure and the
    window as aioquic's receipt leaves them, after every step."""
    up, down = os.urandom(900_000), os.urandom(500_000)

    def script(twin, index):
        # One stream of a side sends at a time (see the first test: aioquic
        # orders streams that sent in one packet by their hash).
        if index < 10 and index % 2 == 0:
            stream_id = twin.client.get_next_available_stream_id()
            twin.client.send_stream_data(stream_id, b"request", end_stream=True)
        if index == 11:
            twin.client.send_stream_data(20, up, end_stream=True)
        if index == 15:
            stream_id = twin.server.get_next_available_stream_id()
            twin.server.send_stream_data(stream_id, down, end_stream=True)

    expected = {("server", 4 * i): b"request" for i in range(5)}
    expected.update({("server", 20): up, ("client", 1): down})
    before = rtt_samples.ReportsAckDelay.runs
    run_twins(
        tmp_path,
        script,
        expected,
        (lambda client, n: n % every == 0) if every else (lambda client, n: False),
        variant={"short": False, "acks": True},
    )
    if not every:
        # without losses, runs of many packets' data were handed over (not
        # one call per packet); with them, what the ACKs cover has gaps
        runs = rtt_samples.ReportsAckDelay.runs - before
        assert 0 < runs < (len(up) + len(down)) / 1400 / 4


def test_other_frames_and_other_connections_are_left_to_aioquic(tmp_path):
    client, server = pair(tmp_path)
    assert short_path.install(object()) is None  # type: ignore[arg-type]
    client.connect(SERVER, now=0.0)
    Wire(client, server, MTU).run(1.0)
    assert short_path.install(client) is client
    assert short_path.install(client) is client  # idempotent
    space = client._spaces[tls.Epoch.ONE_RTT]
    client.send_stream_data(0, b"x" * 5000)
    assert short_path.sendable_streams(client) == [client._streams[0]]
    assert not short_path.control_frames_due(client, space)
    client.send_ping(3)
    assert short_path.control_frames_due(client, space)
    before = short_path.ShortStreams.sent
    client.datagrams_to_send(1.0)  # the PING goes: aioquic's method
    assert short_path.ShortStreams.sent == before
    client.send_stream_data(0, b"y" * 5000)
    client.send_datagram_frame(b"d")
    assert short_path.control_frames_due(client, space)
    client.datagrams_to_send(1.0)
    assert short_path.ShortStreams.sent == before
    client.reset_stream(0, 1)
    assert short_path.sendable_streams(client) is None
