"""A bare aioquic datagram fan-out: the baseline the SFU is measured against.

Same ALPN, certificate type and DATAGRAM settings as the quicmeet server, but
nothing else: connections are grouped into rooms of ``--room-size`` in the
order their handshakes complete, and every datagram a connection sends is
re-sent, unchanged, to the other connections of its group with one transmit
each per loop iteration, the same fan-out, batching and socket buffers as the
SFU. No accounts, no parsing, no per-hop rewrite, no limits.

Run: ``python bench/_meeting_bare.py CERT KEY [--room-size 4]``; prints
``listening on HOST:PORT``.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

from _bare import run, serve_until_terminated
from aioquic.asyncio import QuicConnectionProtocol
from aioquic.quic import events

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from codec.pmtu import is_padding  # noqa: E402
from udpio import SOCKET_BUFFER_BYTES  # noqa: E402


class _Rooms:
    def __init__(self, size: int) -> None:
        self.size = size
        self.groups: list[list[FanOut]] = []

    def place(self, conn: FanOut) -> list[FanOut]:
        if not self.groups or len(self.groups[-1]) >= self.size:
            self.groups.append([])
        group = self.groups[-1]
        group.append(conn)
        return group


class FanOut(QuicConnectionProtocol):
    def __init__(self, *args, rooms: _Rooms, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._rooms = rooms
        self._group: list[FanOut] = []

    def quic_event_received(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.DatagramFrameReceived):
            data = event.data
            if is_padding(data):
                # A path MTU probe of the load generator's client (as the
                # quicmeet server does): forwarded, it would never fit the
                # others' 1,200-byte packets and would block their queues.
                return
            for other in self._group:
                if other is not self:
                    other._quic.send_datagram_frame(data)
                    other._transmit_soon()
        elif isinstance(event, events.HandshakeCompleted):
            self._group = self._rooms.place(self)
        elif isinstance(event, events.ConnectionTerminated) and self in self._group:
            self._group.remove(self)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("cert", type=Path)
    parser.add_argument("key", type=Path)
    parser.add_argument("--room-size", type=int, default=4)
    args = parser.parse_args()
    await serve_until_terminated(
        partial(FanOut, rooms=_Rooms(args.room_size)),
        args.cert,
        args.key,
        socket_buffer=SOCKET_BUFFER_BYTES,
    )


if __name__ == "__main__":
    run(main())
