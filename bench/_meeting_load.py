"""Load participants for the SFU capacity benchmark.

Each participant replays pre-encoded video (so encoding is not what limits the
load generator) at a fixed frame rate: the datagrams of 640x480 synthetic
frames encoded once at about 500 kbit/s, with the participant's own track id.
The 90 kHz timestamp of every datagram is overwritten with its send time, so a
receiver (in this same process, on the same clock) measures the one-way delay
through the server. The sequence and frame numbers are rewritten as they go, so
the replayed clip is one ever-growing stream (the SFU drops a sequence number
it has seen as a duplicate), and a keyframe request makes the participant send
the keyframe next, as a real client does (the SFU drops a track it had to cut
until its next keyframe). Loss is counted by send time: datagrams sent in the
measurement window times the fan-out, against those received.

Against quicmeet the participants log in, join rooms and publish tracks; against
the bare fan-out server (``_meeting_bare.py``) they just connect, grouped by
connection order. Both use the same client protocol and the same data path.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from functools import partial

from _common import percentile, process_cpu_seconds  # noqa: I001

from client import Session
from client.transport import ClientProtocol, open_connection
from codec.media import PacketKind, VideoPacketizer
from codec.media.video import encode_synthetic_clip
from udpio import SOCKET_BUFFER_BYTES

__all__ = ["Load", "pre_encode"]

CLOCK_HZ = 90_000
_TRACK_ID = slice(4, 8)
_SEQ_START = 8
"""Bytes 8-9 of a video datagram: its track's sequence number; 10-13: the
90 kHz timestamp; 14-15: the frame number."""
_TIMESTAMP = slice(10, 14)
_FRAME_END = 16
GENERATOR_QUEUE_LIMIT = 64
"""Datagrams a participant lets wait in aioquic before skipping a frame, as a
real client (``client.media.call``) does."""


def pre_encode(
    width: int, height: int, fps: float, bitrate_bps: int, frames: int
) -> list[list[bytes]]:
    """The datagrams of ``frames`` frames (a keyframe, then P-frames)."""
    packetizer = VideoPacketizer(0)
    return [
        [
            p.serialize()
            for p in packetizer.packetize(frame.data, frame.pts, frame.keyframe)
        ]
        for frame in encode_synthetic_clip(width, height, fps, bitrate_bps, frames)
    ]


@dataclass
class Window:
    """Counters of one measurement window, by send time."""

    start: float = float("inf")
    end: float = float("inf")
    sent: int = 0
    expected: int = 0
    received: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    generator_skipped: int = 0


class Participant:
    """One connection that sends a track and receives its room's datagrams."""

    def __init__(
        self, proto: ClientProtocol, frames: list[list[bytes]], fanout: int
    ) -> None:
        # The load generator must not be what drops datagrams: give it the
        # server's socket buffers.
        sock = proto._transport.get_extra_info("socket")
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_BYTES)
        self.proto = proto
        self.fanout = fanout
        self._frames = frames
        self._next = 0
        self._seq = 0
        self._frame_number = 0
        self.keyframe_wanted = False
        """Set by a keyframe request: the next frame sent is the keyframe."""

    def retrack(self, track_id: int) -> None:
        """Put ``track_id`` in every pre-encoded datagram (once, at setup)."""
        tid = track_id.to_bytes(4, "big")
        self._frames = [
            [d[: _TRACK_ID.start] + tid + d[_TRACK_ID.stop :] for d in frame]
            for frame in self._frames
        ]

    def send(self, now: float, window: Window) -> None:
        if self.keyframe_wanted:
            self.keyframe_wanted = False
            self._next = 0
        frame = self._frames[self._next]
        # After the first keyframe, loop over the P-frames.
        self._next = self._next + 1 if self._next + 1 < len(self._frames) else 1
        quic = self.proto._quic
        in_window = window.start <= now < window.end
        if len(quic._datagrams_pending) > GENERATOR_QUEUE_LIMIT:
            if in_window:
                window.generator_skipped += len(frame)
            return
        stamp = (int(now * CLOCK_HZ) & 0xFFFFFFFF).to_bytes(4, "big")
        frame_number = self._frame_number.to_bytes(2, "big")
        self._frame_number = (self._frame_number + 1) & 0xFFFF
        for data in frame:
            seq = self._seq.to_bytes(2, "big")
            self._seq = (self._seq + 1) & 0xFFFF
            quic.send_datagram_frame(
                data[:_SEQ_START] + seq + stamp + frame_number + data[_FRAME_END:]
            )
        self.proto.transmit()
        if in_window:
            window.sent += len(frame)
            window.expected += len(frame) * self.fanout


class Load:
    """All load participants, sending on one shared frame clock."""

    def __init__(self, frames: list[list[bytes]], fps: float, room_size: int) -> None:
        self.frames = frames
        self.fps = fps
        self.room_size = room_size
        self.participants: list[Participant] = []
        self.sessions: list[Session] = []
        self.window = Window()
        self.paused = False
        """While set, nobody sends (rooms are being added: account creation
        hashes passwords on the server, which must not count as load)."""
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[None] | None = None

    def _on_datagram(self, participant: Participant, data: bytes) -> None:
        kind = data[0] >> 3 & 0b111 if data else None
        if kind == PacketKind.KEYFRAME_REQUEST:
            participant.keyframe_wanted = True
            return
        if kind != PacketKind.VIDEO:
            return  # NACKs: the load does not repair
        now = self._loop.time()
        sent_ticks = int.from_bytes(data[_TIMESTAMP], "big")
        age = ((int(now * CLOCK_HZ) - sent_ticks) & 0xFFFFFFFF) / CLOCK_HZ
        window = self.window
        if window.start <= now - age < window.end:
            window.received += 1
            window.latencies_ms.append(age * 1000)

    async def add_quicmeet_room(self, address: str, tokens: list[bytes]) -> None:
        room_id: str | None = None
        for token in tokens:
            session = Session(address, reconnect=False)
            await session.connect()
            await session.resume(token)
            if room_id is None:
                room_id = (await session.rooms.create()).room_id
            else:
                await session.rooms.join(room_id)
            track = await session.rooms.publish("camera", 640, 480, self.fps)
            assert session._proto is not None
            participant = Participant(session._proto, self.frames, len(tokens) - 1)
            participant.retrack(track.track_id)
            session.rooms.datagram_handler = partial(self._on_datagram, participant)
            self.sessions.append(session)
            self.participants.append(participant)

    async def add_bare_room(self, host: str, port: int) -> None:
        for _ in range(self.room_size):
            proto = await open_connection(host, port)
            participant = Participant(proto, self.frames, self.room_size - 1)
            proto.on_datagram = partial(self._on_datagram, participant)
            self.participants.append(participant)

    def start(self) -> None:
        self._task = self._loop.create_task(self._run())

    async def _run(self) -> None:
        interval = 1.0 / self.fps
        due = self._loop.time()
        while True:
            now = self._loop.time()
            if not self.paused:
                for participant in self.participants:
                    participant.send(now, self.window)
            due += interval
            delay = due - self._loop.time()
            if delay < -interval:
                due = self._loop.time()
            await asyncio.sleep(max(0.0, delay))

    async def measure(
        self, seconds: float, warm_up: float = 2.0, grace: float = 0.5
    ) -> dict[str, float]:
        """Send for ``warm_up`` seconds, then count one window of ``seconds``
        (plus ``grace`` for the last datagrams to arrive); return loss, latency
        and rates."""
        await asyncio.sleep(warm_up)
        cpu_before = process_cpu_seconds()
        self.window = window = Window()
        window.start = self._loop.time()
        window.end = window.start + seconds
        await asyncio.sleep(seconds + grace)
        cpu = process_cpu_seconds() - cpu_before
        received = window.received
        return {
            "participants": len(self.participants),
            "sent_per_s": round(window.sent / seconds),
            "forwarded_per_s": round(received / seconds),
            "loss": round(1 - received / window.expected, 4)
            if window.expected
            else 0.0,
            "latency_p50_ms": _round(percentile(window.latencies_ms, 50)),
            "latency_p95_ms": _round(percentile(window.latencies_ms, 95)),
            "generator_skipped": window.generator_skipped,
            "generator_cpu": round(cpu / (seconds + grace), 3),
        }

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for session in self.sessions:
            await session.close()
        for participant in self.participants:
            participant.proto.close_quietly()


def _round(value: float) -> float:
    return round(value, 2) if value == value else value
