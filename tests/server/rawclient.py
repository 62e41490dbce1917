"""A bare client for tests that must put arbitrary bytes on the wire."""

from __future__ import annotations

import asyncio
import ssl

from aioquic.asyncio import QuicConnectionProtocol, connect
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration

from codec import FrameDecoder, decode_server_message, encode_message
from codec.messages import Message


class RawClient(QuicConnectionProtocol):
    """Records every frame the server sends on the control stream."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.decoder = FrameDecoder()
        self.received: list[Message] = []
        self.arrived = asyncio.Event()
        self.terminated: events.ConnectionTerminated | None = None
        self.stream_frames: dict[int, list[Message]] = {}
        """The first frame the server sent on each stream."""
        self.stream_data: dict[int, bytearray] = {}
        """Every byte the server sent on each stream."""
        self.resets: list[int] = []
        self.stream_ended: set[int] = set()
        self.stopped: list[int] = []

    def quic_event_received(self, event):
        if isinstance(event, events.StreamDataReceived):
            if event.stream_id == 0:
                for frame in self.decoder.feed(event.data):
                    self.received.append(decode_server_message(frame))
            else:
                data = self.stream_data.setdefault(event.stream_id, bytearray())
                data += event.data
                frames = self.stream_frames.setdefault(event.stream_id, [])
                if not frames and len(data) >= 4:
                    # Only the first frame: a download's raw bytes follow it.
                    end = 4 + int.from_bytes(data[:4], "big")
                    if len(data) >= end:
                        frames.append(decode_server_message(bytes(data[4:end])))
                if event.end_stream:
                    self.stream_ended.add(event.stream_id)
            self.arrived.set()
        elif isinstance(event, events.StreamReset):
            self.resets.append(event.stream_id)
            self.arrived.set()
        elif isinstance(event, events.StopSendingReceived):
            self.stopped.append(event.stream_id)
            self.arrived.set()
        elif isinstance(event, events.ConnectionTerminated):
            self.terminated = event
            self.arrived.set()

    def send_raw(self, data: bytes, stream_id: int = 0, end: bool = False) -> None:
        self._quic.send_stream_data(stream_id, data, end)
        self.transmit()

    def send(self, message: Message) -> None:
        self.send_raw(encode_message(message))

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Message]:
        """Wait until ``count`` control frames have arrived; return them all."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.received) < count and self.terminated is None:
            self.arrived.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(self.arrived.wait(), remaining)
            except TimeoutError:
                break
        return self.received

    async def until(self, predicate, timeout: float = 5.0) -> bool:
        """Wait until ``predicate()`` holds (or the connection ended); say if it
        did."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate() and self.terminated is None:
            self.arrived.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(self.arrived.wait(), remaining)
            except TimeoutError:
                break
        return bool(predicate())

    def open_stream(self, data: bytes, end: bool = False) -> int:
        """Open a new bidirectional stream with ``data``; return its id."""
        stream_id = self._quic.get_next_available_stream_id()
        self.send_raw(data, stream_id, end)
        return stream_id

    async def request(self, message: Message, timeout: float = 5.0) -> Message:
        before = len(self.received)
        self.send(message)
        received = await self.wait_for(before + 1, timeout)
        assert len(received) > before, "no reply"
        return received[before]


def raw_configuration(alpn: str = "quicmeet/1") -> QuicConfiguration:
    configuration = QuicConfiguration(
        is_client=True, alpn_protocols=[alpn], idle_timeout=5.0
    )
    configuration.verify_mode = ssl.CERT_NONE
    return configuration


def raw_connect(host: str, port: int, alpn: str = "quicmeet/1"):
    """``async with raw_connect(...) as client`` gives a connected RawClient."""
    return connect(
        host, port, configuration=raw_configuration(alpn), create_protocol=RawClient
    )
