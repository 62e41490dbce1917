"""What a server reads off a datagram before it opens a connection for it.

A client's first flight is an Initial packet in a datagram padded to at least
1,200 bytes (RFC 9000, section 14.1), to a connection id of its own choosing.
A server that cannot yet tell a real client from a flood may answer it with a
Retry (section 8.1.2): the client's next Initial then carries the Retry's
token, which proves it reads what is sent to its address. These helpers look
at the raw bytes only (no header object, no keys), so the node's endpoint and
its router can ask them of every long header cheaply.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["FIRST_FLIGHT_MIN_BYTES", "carries_token", "opens_connection"]

FIRST_FLIGHT_MIN_BYTES = 1200
"""A client pads every datagram of its Initial packets to this (RFC 9000,
section 14.1); a server opens no connection for a smaller one."""
_INITIAL_TYPE_BITS = {0x00000001: 0x00, 0x6B3343CF: 0x10}
"""An Initial packet's type bits in the first byte, by QUIC version (1,
RFC 9000; 2, RFC 9369)."""


def opens_connection(data: bytes, known: Callable[[bytes], bool] | None) -> bool:
    """Whether ``data`` (a long header's packet, at least 7 bytes) is the
    first flight of a new connection: an Initial packet, of a version the
    endpoint may speak, in a datagram a server opens a connection for, to a
    connection id the protocol does not know (``known``; False when it
    cannot say). Anything else goes to the protocol as it is read, which
    drops it or answers it at once (a version negotiation)."""
    if known is None or len(data) < FIRST_FLIGHT_MIN_BYTES:
        return False
    bits = _INITIAL_TYPE_BITS.get(int.from_bytes(data[1:5], "big"))
    if bits is None or data[0] & 0x30 != bits:
        return False
    return not known(data[6 : 6 + data[5]])


def carries_token(data: bytes) -> bool:
    """Whether an Initial packet (``data`` as :func:`opens_connection` found
    it) has a non-empty token: after the destination and source connection
    ids (a length byte each) comes the token's length, a variable-length
    integer: one zero byte for an empty token (a longer encoding of zero
    counts as a token here, and the server then finds it empty). A header
    cut short has none."""
    at = 6 + data[5]
    if at >= len(data):
        return False
    at += 1 + data[at]
    return at < len(data) and data[at] != 0
