"""A bare aioquic request/response server: the baseline of ``bench/chat.py``.

It speaks the same ALPN, framing and codec as quicmeet and answers every
request frame on the control stream with ``Ok`` carrying its ``rid``, with no
accounts, storage or delivery: what remains is aioquic, framing and msgpack.
Run: ``python bench/_bare_rr.py CERT KEY``; prints ``listening on HOST:PORT``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec
from _bare import run, serve_until_terminated
from aioquic.asyncio import QuicConnectionProtocol
from aioquic.quic import events

from codec import FrameDecoder, encode_message
from codec.messages import Ok


class _Rid(msgspec.Struct):
    rid: int


_decode_rid = msgspec.msgpack.Decoder(_Rid).decode


class Answer(QuicConnectionProtocol):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._decoder = FrameDecoder()

    def quic_event_received(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.StreamDataReceived) and event.stream_id == 0:
            replies = [
                encode_message(Ok(rid=_decode_rid(frame).rid))
                for frame in self._decoder.feed(event.data)
                if isinstance(frame, bytes)
            ]
            if replies:
                self._quic.send_stream_data(0, b"".join(replies))
                self.transmit()


async def main() -> None:
    await serve_until_terminated(Answer, Path(sys.argv[1]), Path(sys.argv[2]))


if __name__ == "__main__":
    run(main())
