"""A connection's congestion controller changed in place; for the server and
the client.

aioquic makes a connection's controller once, from its configuration, and
keeps it private (``QuicConnection._loss._cc``). A connection that carries a
user's files gives way to that user's meeting while it lasts (the scavenger
controller, ``codec/media/cc/scavenger.py``) and holds its share otherwise
(the media controller): the client's upload pump changes its side when its
engine's meeting begins or ends, the server its side of a download when the
user joins or leaves a room (docs/adaptation.md, "Files beside a meeting").
"""

from __future__ import annotations

from aioquic.quic.congestion.base import (
    QuicCongestionControl,
    create_congestion_control,
)
from aioquic.quic.connection import QuicConnection
from aioquic.quic.recovery import QuicPacketRecovery

__all__ = ["PRIVATE_ATTRIBUTES", "replace_congestion_control"]

PRIVATE_ATTRIBUTES: dict[type, tuple[str, ...]] = {
    QuicConnection: ("_loss", "_configuration"),
    QuicPacketRecovery: ("_cc",),
}
"""Which private attribute of which aioquic class this module reads."""


def replace_congestion_control(
    quic: QuicConnection, algorithm: str
) -> QuicCongestionControl:
    """Run the connection on a fresh controller of ``algorithm`` (a name
    registered with aioquic) from now on, and return it. The bytes in flight
    carry over: their acknowledgements and losses reach the new controller,
    which counts them down as its own; what the old one learned of the path
    does not (the new one starts as on a new connection)."""
    loss = quic._loss
    controller = create_congestion_control(
        algorithm, max_datagram_size=quic._configuration.max_datagram_size
    )
    controller.bytes_in_flight = loss._cc.bytes_in_flight
    loss._cc = controller
    return controller
