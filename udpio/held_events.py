"""A burst's QUIC events handled once, at its end; for the server and the client.

aioquic's protocol handles the events of each datagram as it arrives
(``datagram_received``: receive, ``_process_events``, ``transmit``). During a
transfer a datagram brings one packet and the packet one STREAM frame, so
each 1.4 kB of a file became an event, popped and dispatched through our
protocol to the stream's handler (or listener) on its own: about 700 a MB,
each a few µs of Python, at the receiving end of every upload and download.

:class:`HoldsEvents` (a mixin for a ``QuicConnectionProtocol`` whose
transport is a :class:`udpio.endpoint.UdpEndpoint`) receives each datagram at
once but, while the endpoint reads a burst, has the endpoint hold the
handling of the events until the burst is read
(:meth:`UdpEndpoint.hold_events`), and then handles them once, after
:func:`coalesce_stream_data` made each run of consecutive data of one stream
one event (the data joined, the end of the stream the run's last). The
connection's state does not change: aioquic has taken every packet when it
was read; only when our code hears of the data moves, to the end of the
burst (the transmit, which the endpoint already put off to then, still comes
after). Outside a burst (datagrams handed in by anything else) it does what
aioquic does. After a datagram the short receive path found *quiet* (ACKs
that acknowledged nothing new, :mod:`udpio.short_receive`) there is nothing
to handle and nothing to send: neither is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import QuicEvent, StreamDataReceived

from .short_receive import ShortReceive

__all__ = ["PRIVATE_ATTRIBUTES", "HoldsEvents", "coalesce_stream_data"]

PRIVATE_ATTRIBUTES: dict[type, tuple[str, ...]] = {
    QuicConnectionProtocol: ("_quic", "_loop", "_process_events"),
    QuicConnection: ("_events",),
}
"""Which private attribute of which aioquic class this module reads."""


def coalesce_stream_data(quic: QuicConnection) -> int:
    """Make each run of consecutive ``StreamDataReceived`` events of one
    stream in ``quic``'s event queue one event, in place; returns how many
    events it saved. A run ends at another stream's data, at any other event
    and after the stream's end."""
    queue = quic._events
    if len(queue) < 2:
        return 0
    merged: list[QuicEvent] = []
    run: list[StreamDataReceived] = []
    for event in queue:
        if type(event) is StreamDataReceived:
            if run and (run[-1].stream_id != event.stream_id or run[-1].end_stream):
                _close_run(run, merged)
            run.append(event)
        else:
            _close_run(run, merged)
            merged.append(event)
    _close_run(run, merged)
    saved = len(queue) - len(merged)
    if saved:
        queue.clear()
        queue.extend(merged)
    return saved


def _close_run(run: list[StreamDataReceived], merged: list[QuicEvent]) -> None:
    if len(run) == 1:
        merged.append(run[0])
    elif run:
        merged.append(
            StreamDataReceived(
                data=b"".join(event.data for event in run),
                end_stream=run[-1].end_stream,
                stream_id=run[0].stream_id,
            )
        )
    run.clear()


class HoldsEvents:
    """For a ``QuicConnectionProtocol`` on a ``UdpEndpoint`` (its
    ``_endpoint``, None until it has one): a burst's events handled once, at
    its end (see the module)."""

    __slots__ = ()

    _endpoint: Any
    _quic: QuicConnection
    _loop: asyncio.AbstractEventLoop
    _process_events: Callable[[], None]
    transmit: Callable[[], None]

    coalesced = 0
    """Events saved by :func:`coalesce_stream_data`, in this process."""

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        quiet = ShortReceive.quiet
        self._quic.receive_datagram(data, addr, now=self._loop.time())  # type: ignore[arg-type]
        if ShortReceive.quiet != quiet:
            return  # nothing to hand on or send (udpio.short_receive)
        endpoint = self._endpoint
        if endpoint is not None and endpoint.hold_events(self):
            return
        self._process_events()
        self.transmit()

    def process_events(self) -> None:
        """The events held for the end of the burst (the endpoint calls it)."""
        HoldsEvents.coalesced += coalesce_stream_data(self._quic)
        self._process_events()
        self.transmit()
