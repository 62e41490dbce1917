"""An upload pump: the bytes of one large upload, sent from a process of its
own over a *transfer connection* of the user's session (``AttachTransfers``).

The desktop app's engine runs the meeting's media on its event loop; an
upload's packets built and encrypted on that loop wait for the GIL behind
the decoders and the media datagrams. A pump has its own interpreter, its own
QUIC connection (made by the same factory as the session's) and its own
congestion window. The engine keeps everything else of the transfer: its row,
the hash, the offer, pause, cancel and resume (``docs/engine.md``).

    python -m client.transfers.pump

reads one JSON line on stdin (:class:`~client.transfers.pumping.Order`),
then ``stop`` lines (end the stream where it is, as a pause does) and
``yield`` and ``full`` lines (a meeting began or ended); end of file on
stdin ends the pump at once (its engine is gone). It writes JSON lines on
stdout: ``{"attached": true}`` once the server accepted the connection,
``{"yielding": bool}`` when its connection changed controller,
``{"written": n}`` every window, and last one of ``{"stored":
state, "received": n, "moved": n}``, ``{"error": code, "message": text,
"retry_after_ms": ms, "written": n, "moved": n}`` (the server refused the
stream) or ``{"lost": reason, "written": n, "moved": n}``.

While the engine is in a meeting the pump's connection runs the scavenger
controller (``codec/media/cc/scavenger.py``), which gives way to any flow
that builds a queue: the file moves at what the meeting's media leave of
the path and takes it back within seconds of the meeting's end, when the
connection goes back to the media controller, which holds its share
against any flow (docs/adaptation.md, "Files beside a meeting").
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import sys
from pathlib import Path
from typing import Any

import msgspec

from codec.media.cc import (
    register_media_congestion_control,
    register_scavenger_congestion_control,
)
from codec.messages import AttachTransfers, Error, FileStored, Ok

from ..errors import ClientError
from ..pinning import PinStore
from ..session import Session
from ..transport import ClientProtocol
from .outbound import StreamLost, send_from
from .pumping import Order
from .records import TransferError

__all__ = ["main"]

log = logging.getLogger("quicmeet.transfers.pump")


def _say(**line: Any) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def _controller(yielding: bool) -> str:
    if yielding:
        return register_scavenger_congestion_control()
    return register_media_congestion_control()


class Yielding:
    """Whether the pump's connection gives way to a meeting's media now."""

    def __init__(self, on: bool) -> None:
        self.on = on
        self._proto: ClientProtocol | None = None

    def attach(self, proto: ClientProtocol) -> None:
        """The connection is up (it started on :attr:`on`'s controller)."""
        self._proto = proto
        self.set(self.on)

    def set(self, on: bool) -> None:
        """A meeting began (``True``) or ended."""
        self.on = on
        proto = self._proto
        if proto is not None and proto.congestion_control != _controller(on):
            proto.use_congestion_control(_controller(on))
            _say(yielding=on)


async def pump(order: Order, stop: asyncio.Event, yielding: Yielding) -> None:
    """Attach to the session and send the file; every outcome is one line."""
    pins = PinStore(None)
    pins.check(order.server, order.fingerprint)
    session = Session(
        order.server,
        pins=pins,
        ca_file=None if order.ca_file is None else Path(order.ca_file),
        reconnect=False,
        congestion_control=_controller(yielding.on),
    )
    try:
        await session.connect()
        await session.call(AttachTransfers, Ok, token=bytes.fromhex(order.token))
        proto = await session.wait_ready(10)
    except ClientError as exc:
        _say(lost=f"not attached: {exc}", written=order.offset, moved=0)
        await session.close()
        return
    _say(attached=True)
    yielding.attach(proto)

    async def checkpoint(written: int) -> bool:
        _say(written=written)
        return stop.is_set()

    try:
        sent = await send_from(
            proto, order.file_id, order.path, order.offset, order.size,
            checkpoint, lambda written: None, stop.is_set,
        )  # fmt: skip
    except StreamLost as lost:
        _say(lost=str(lost.__cause__), written=lost.written, moved=lost.moved)
        return
    except (ClientError, TransferError) as exc:
        _say(lost=str(exc), written=order.offset, moved=0)
        return
    finally:
        await session.close()
    reply = sent.reply
    if isinstance(reply, Error):
        _say(
            error=reply.code,
            message=reply.message,
            retry_after_ms=reply.retry_after_ms,
            written=sent.written,
            moved=sent.moved,
        )
    elif isinstance(reply, FileStored):
        _say(stored=reply.state, received=reply.received, moved=sent.moved)
    else:
        what = f"unexpected reply {type(reply).__name__}"
        _say(lost=what, written=sent.written, moved=sent.moved)


async def _run() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    order = msgspec.json.decode(await reader.readline(), type=Order)
    stop = asyncio.Event()
    yielding = Yielding(order.yielding)
    task = asyncio.ensure_future(pump(order, stop, yielding))

    async def watch() -> None:
        # A "stop" line pauses; end of file means the engine is gone.
        while line := await reader.readline():
            word = line.strip()
            if word == b"stop":
                stop.set()
            elif word in (b"yield", b"full"):
                yielding.set(word == b"yield")
        task.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        watcher.cancel()


def main() -> None:
    """Run one pump (``python -m client.transfers.pump``)."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    mode = os.fstat(sys.stdin.fileno()).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        # Its end of file is how a pump learns that its engine is gone.
        sys.exit("pump: stdin must be a pipe from the engine")
    try:
        asyncio.run(_run())
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        sys.exit(f"pump: bad order: {exc}")


if __name__ == "__main__":
    main()
