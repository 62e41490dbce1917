""":mod:`udpio.held_events`: a burst's events handled once at its end, with
consecutive data of one stream as one event; the endpoint's hold on a real
loopback socket."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import (
    DatagramFrameReceived,
    StreamDataReceived,
    StreamReset,
)

from tests.conftest import eventually
from udpio import UdpEndpoint, open_endpoint
from udpio.held_events import coalesce_stream_data


def data(stream_id: int, payload: bytes, end: bool = False) -> StreamDataReceived:
    return StreamDataReceived(data=payload, end_stream=end, stream_id=stream_id)


def queue_of(*events: Any) -> QuicConnection:
    quic = QuicConnection(configuration=QuicConfiguration(is_client=True))
    quic._events.clear()
    quic._events.extend(events)
    return quic


def drained(quic: QuicConnection) -> list:
    out = []
    while (event := quic.next_event()) is not None:
        out.append(event)
    return out


def test_a_run_of_one_streams_data_becomes_one_event_ending_as_it_ended():
    quic = queue_of(data(4, b"ab"), data(4, b"cd"), data(4, b"e", end=True))
    assert coalesce_stream_data(quic) == 2
    assert drained(quic) == [data(4, b"abcde", end=True)]


def test_runs_end_at_another_stream_another_event_and_a_streams_end():
    ping = DatagramFrameReceived(data=b"media")
    reset = StreamReset(error_code=1, stream_id=8)
    quic = queue_of(
        data(0, b"1"),
        data(0, b"2"),
        data(4, b"x"),  # another stream: a new run
        data(0, b"3"),
        ping,  # any other event ends a run
        data(0, b"4"),
        data(0, b"5", end=True),
        data(0, b""),  # after the end: never joined to it
        reset,
        data(8, b"y"),
    )
    assert coalesce_stream_data(quic) == 2
    assert drained(quic) == [
        data(0, b"12"),
        data(4, b"x"),
        data(0, b"3"),
        ping,
        data(0, b"45", end=True),
        data(0, b""),
        reset,
        data(8, b"y"),
    ]


def test_nothing_to_join_leaves_the_queue_as_it_was():
    for events in ([], [data(0, b"a")], [data(0, b"a"), data(4, b"b")]):
        quic = queue_of(*events)
        assert coalesce_stream_data(quic) == 0
        assert drained(quic) == events


class Holder(asyncio.DatagramProtocol):
    """Holds its events on every datagram of a burst; records what the
    endpoint calls back, and asks for a transmit while handling events."""

    def __init__(self) -> None:
        self.endpoint: UdpEndpoint | None = None
        self.calls: list[tuple[str, int]] = []
        self.pending = 0
        self.deferred_from_events: list[bool] = []

    def connection_made(self, transport: Any) -> None:
        self.endpoint = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        assert self.endpoint is not None
        self.pending += 1
        assert self.endpoint.hold_events(self)

    def process_events(self) -> None:
        assert self.endpoint is not None
        self.calls.append(("events", self.pending))
        self.pending = 0
        # what handling the events sends still joins the burst's transmits
        self.deferred_from_events.append(self.endpoint.defer(self))

    def transmit(self) -> None:
        self.calls.append(("transmit", 0))


async def test_the_endpoint_hands_a_bursts_events_over_once_before_its_transmits():
    endpoint, holder = await open_endpoint(Holder, ("127.0.0.1", 0), gro=False)
    assert isinstance(holder, Holder)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        address = endpoint.get_extra_info("sockname")
        for i in range(40):
            sender.sendto(i.to_bytes(4, "big"), address)
        await eventually(lambda: sum(n for kind, n in holder.calls) == 40)
        kinds = [kind for kind, _ in holder.calls]
        # per burst: the events once, then the transmit they asked for
        assert kinds == ["events", "transmit"] * (len(kinds) // 2)
        assert all(holder.deferred_from_events)
        assert len(kinds) // 2 <= 40
        assert not endpoint.hold_events(holder)  # no burst is being read now
    finally:
        endpoint.close()
        sender.close()


class Two(asyncio.DatagramProtocol):
    """Hands each datagram to one of two holders by its first byte (as the
    server's router hands them to connections); the first holder's
    ``process_events`` raises on the burst that brings b"bad"."""

    def __init__(self) -> None:
        self.holders = [Holder(), Holder()]
        broken = self.holders[0]
        original = broken.process_events

        def process_events() -> None:
            original()
            if self.bad_pending:
                self.bad_pending = False
                raise ValueError("a broken handler")

        broken.process_events = process_events  # type: ignore[method-assign]
        self.bad_pending = False

    def connection_made(self, transport: Any) -> None:
        for holder in self.holders:
            holder.connection_made(transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if data == b"bad":
            self.bad_pending = True
        self.holders[data[0] % 2].datagram_received(data, addr)


async def test_a_protocol_whose_events_raise_loses_nothing_for_the_others(caplog):
    endpoint, two = await open_endpoint(Two, ("127.0.0.1", 0), gro=False)
    assert isinstance(two, Two)
    first, second = two.holders
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        address = endpoint.get_extra_info("sockname")
        # b"bad" starts with an even byte (the first holder); b"a" with an odd
        for data in (b"bad", b"a", b"a"):
            sender.sendto(data, address)
        await eventually(lambda: sum(n for _, n in second.calls) == 2)
        assert "a broken handler" in caplog.text
        # the other holder's events were handled and its transmit ran
        assert ("transmit", 0) in second.calls
        # and the broken one is served again on the next burst
        sender.sendto(b"b", address)
        await eventually(lambda: sum(n for _, n in first.calls) == 2)
    finally:
        endpoint.close()
        sender.close()
