"""The batching UDP endpoint on real loopback sockets: GSO sends arrive as
separate datagrams (also through netsim's proxy), the plain fallback sends the
same, GRO bursts are cut back, a wakeup reads a bounded burst, and protocols'
deferred transmits run once per burst."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import pytest

from netsim import ImpairmentProxy, LinkConfig
from tests.conftest import eventually
from udpio import (
    MAX_DATAGRAMS_PER_WAKEUP,
    UdpEndpoint,
    gso_supported,
    open_endpoint,
)

BURST = [bytes([i]) * 1200 for i in range(20)] + [b"tail" * 50]


class Recorder(asyncio.DatagramProtocol):
    """Records datagrams, and the size of each burst it was handed (it asks
    the endpoint to defer its transmit, which then closes the burst)."""

    def __init__(self) -> None:
        self.endpoint: UdpEndpoint | None = None
        self.datagrams: list[bytes] = []
        self.bursts: list[int] = []
        self._in_burst = 0
        self.fail_on: bytes | None = None

    def connection_made(self, transport: Any) -> None:
        self.endpoint = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.datagrams.append(data)
        self._in_burst += 1
        assert self.endpoint is not None
        assert self.endpoint.defer(self)
        if data == self.fail_on:
            raise ValueError("a bad datagram")

    def transmit(self) -> None:
        self.bursts.append(self._in_burst)
        self._in_burst = 0


def plain_receiver() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


def drain(sock: socket.socket) -> list[bytes]:
    got = []
    while True:
        try:
            got.append(sock.recv(65535))
        except BlockingIOError:
            return got


async def test_a_burst_to_one_peer_leaves_in_one_gso_call_as_separate_datagrams():
    receiver = plain_receiver()
    endpoint, _ = await open_endpoint(Recorder, ("127.0.0.1", 0))
    try:
        assert endpoint.gso == gso_supported(endpoint.get_extra_info("socket"))
        for data in BURST:
            endpoint.sendto(data, receiver.getsockname())
        assert endpoint.stats["send_calls"] == 0  # queued until the turn ends
        got: list[bytes] = []
        await eventually(lambda: got.extend(drain(receiver)) or len(got) == 21)
        assert got == BURST
        assert endpoint.stats["datagrams_sent"] == 21
        assert endpoint.stats["send_calls"] == (1 if endpoint.gso else 21)
    finally:
        endpoint.close()
        receiver.close()


async def test_the_plain_fallback_sends_the_same_datagrams_one_call_each():
    receiver = plain_receiver()
    endpoint, _ = await open_endpoint(Recorder, ("127.0.0.1", 0), gso=False)
    try:
        assert not endpoint.gso
        for data in BURST:
            endpoint.sendto(data, receiver.getsockname())
        got: list[bytes] = []
        await eventually(lambda: got.extend(drain(receiver)) or len(got) == 21)
        assert got == BURST
        assert endpoint.stats["send_calls"] == 21
    finally:
        endpoint.close()
        receiver.close()


@pytest.mark.parametrize("gro", [True, False])
async def test_a_gso_burst_is_received_as_its_datagrams_with_or_without_gro(gro):
    endpoint, recorder = await open_endpoint(Recorder, ("127.0.0.1", 0), gro=gro)
    assert isinstance(recorder, Recorder)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        address = endpoint.get_extra_info("sockname")
        if gso_supported(sender):
            sender.sendmsg(BURST, [(17, 103, struct.pack("=H", 1200))], 0, address)
        else:
            for data in BURST:
                sender.sendto(data, address)
        await eventually(lambda: len(recorder.datagrams) == 21)
        assert recorder.datagrams == BURST
        calls = endpoint.stats["receive_calls"]
        assert calls == (1 if endpoint.gro and gso_supported(sender) else 21)
    finally:
        endpoint.close()
        sender.close()


async def test_a_wakeup_reads_a_bounded_burst_and_transmits_once_after_it():
    endpoint, recorder = await open_endpoint(Recorder, ("127.0.0.1", 0), gro=False)
    assert isinstance(recorder, Recorder)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        address = endpoint.get_extra_info("sockname")
        for i in range(300):
            sender.sendto(i.to_bytes(4, "big"), address)
        await eventually(lambda: len(recorder.datagrams) == 300)
        assert sum(recorder.bursts) == 300
        assert max(recorder.bursts) <= MAX_DATAGRAMS_PER_WAKEUP
        assert len(recorder.bursts) >= 300 // MAX_DATAGRAMS_PER_WAKEUP
        assert not endpoint.defer(recorder)  # no burst is being read now
    finally:
        endpoint.close()
        sender.close()


async def test_a_datagram_whose_handler_raises_loses_nothing_else(caplog):
    endpoint, recorder = await open_endpoint(Recorder, ("127.0.0.1", 0))
    assert isinstance(recorder, Recorder)
    recorder.fail_on = b"bad"
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        address = endpoint.get_extra_info("sockname")
        for data in (b"one", b"bad", b"two"):
            sender.sendto(data, address)
        await eventually(lambda: len(recorder.datagrams) == 3)
        assert recorder.datagrams == [b"one", b"bad", b"two"]
        assert "a bad datagram" in caplog.text
    finally:
        endpoint.close()
        sender.close()


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)


async def test_netsim_proxy_relays_gso_segments_as_datagrams():
    """GSO leaves the sender as one call; netsim's proxy reads each segment as
    a datagram and relays it, both ways, to an echo behind it."""
    echo, _ = await open_endpoint(Echo, ("127.0.0.1", 0))
    clean = LinkConfig()
    async with ImpairmentProxy(
        upstream=echo.get_extra_info("sockname"), up=clean, down=clean
    ) as proxy:
        endpoint, recorder = await open_endpoint(Recorder, ("127.0.0.1", 0))
        assert isinstance(recorder, Recorder)
        try:
            for data in BURST:
                endpoint.sendto(data, proxy.listen_address)
            await eventually(lambda: len(recorder.datagrams) == 21)
            assert sorted(recorder.datagrams) == sorted(BURST)
            assert proxy.stats.up.packets_in == 21
        finally:
            endpoint.close()
    echo.close()


async def test_close_stops_reading_and_sending_and_tells_the_protocol():
    lost = asyncio.get_running_loop().create_future()

    class Closing(Recorder):
        def connection_lost(self, exc: Exception | None) -> None:
            lost.set_result(exc)

    endpoint, _ = await open_endpoint(Closing, ("127.0.0.1", 0))
    sock = endpoint.get_extra_info("socket")
    endpoint.close()
    assert endpoint.is_closing() and sock.fileno() == -1
    endpoint.sendto(b"after close", ("127.0.0.1", 9))
    assert endpoint.get_write_buffer_size() == 0
    assert await asyncio.wait_for(lost, 5) is None


async def test_a_protocol_closing_mid_burst_still_sends_its_last_words():
    """A client that closes while handling a datagram (a kick, an error) had
    its transmit put off to the end of the burst: it must leave before the
    socket closes."""
    receiver = plain_receiver()

    class Closer(Recorder):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            super().datagram_received(data, addr)
            assert self.endpoint is not None
            self.endpoint.close()

        def transmit(self) -> None:
            super().transmit()
            assert self.endpoint is not None
            self.endpoint.sendto(b"goodbye", receiver.getsockname())

    endpoint, recorder = await open_endpoint(Closer, ("127.0.0.1", 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sender.sendto(b"kick", endpoint.get_extra_info("sockname"))
        got: list[bytes] = []
        await eventually(lambda: got.extend(drain(receiver)) or got == [b"goodbye"])
        assert endpoint.is_closing()
    finally:
        sender.close()
        receiver.close()
