"""Opening and sealing 1-RTT packets with aioquic's keys, without aioquic's
copies.

aioquic's ``HeaderProtection.remove`` copies the whole packet into a
``bytearray`` to unmask its first byte and packet number, then copies the
header out of it, and ``CryptoContext.decrypt_packet`` slices the payload
once more: about 3 µs of a 1,450-byte packet on this machine, of which the
AES-GCM work itself (the ``cryptography`` package) is 0.8 and the mask 0.2.
Its ``apply`` joins header and sealed payload, copies them into a
``bytearray`` to mask the header and copies the whole packet out again.
:func:`open_short` and :func:`seal_short` mask and unmask only the header's
bytes and hand the payload to the same AEAD object with the same nonce: the
same bytes, packet number or ``CryptoError``
(``tests/udpio/test_packet_crypto.py`` compares them with aioquic's on every
cipher suite, both key phases and damaged packets).

A key update (a packet in the other key phase, or one requested before a
packet is sealed) and keys of another shape (an aioquic whose ``_crypto``
differs from 1.7's, listed in :data:`PRIVATE_ATTRIBUTES`) go through
aioquic's own ``decrypt_packet`` and ``encrypt_packet``.
"""

from __future__ import annotations

from typing import Any

from aioquic._crypto import AEAD, HeaderProtection
from aioquic.quic.crypto import CryptoError, CryptoPair
from aioquic.quic.packet import decode_packet_number
from cryptography.exceptions import InvalidTag

__all__ = ["PRIVATE_ATTRIBUTES", "open_short", "seal_short"]

PRIVATE_ATTRIBUTES: dict[type, tuple[str, ...]] = {
    AEAD: ("_aead", "_iv"),
    HeaderProtection: ("_mask",),
    CryptoPair: ("_update_key_requested",),
}
"""Which private attribute of which aioquic class this module reads."""

_SAMPLE_SIZE = 16
_PACKET_NUMBER_MAX_SIZE = 4
_NONCE_SIZE = 12
_SHORT_HEADER_MASK = 0x1F


def open_short(
    pair: CryptoPair, packet: bytes, pn_offset: int, expected: int
) -> tuple[bytes, bytes, int]:
    """``pair.decrypt_packet(packet, pn_offset, expected)`` for a packet with
    a short header: its plain header, payload and packet number; raises
    aioquic's ``CryptoError`` (``KeyUnavailableError`` without keys) as it
    does."""
    recv = pair.recv
    aead: Any = recv.aead
    hp: Any = recv.hp
    if aead is None or not _usable(aead, hp):
        return pair.decrypt_packet(packet, pn_offset, expected)
    sample = pn_offset + _PACKET_NUMBER_MAX_SIZE
    if sample + _SAMPLE_SIZE > len(packet):
        raise CryptoError("Packet is too short to sample")
    mask = hp._mask(packet[sample : sample + _SAMPLE_SIZE])
    first = packet[0] ^ (mask[0] & _SHORT_HEADER_MASK)
    if (first & 4) >> 2 != recv.key_phase:
        return pair.decrypt_packet(packet, pn_offset, expected)  # a key update
    length = (first & 3) + 1
    end = pn_offset + length
    truncated = int.from_bytes(packet[pn_offset:end], "big") ^ int.from_bytes(
        mask[1 : 1 + length], "big"
    )
    header = bytes((first,)) + packet[1:pn_offset] + truncated.to_bytes(length, "big")
    number = decode_packet_number(truncated, length * 8, expected)
    try:
        payload = aead._aead.decrypt(
            (aead._iv ^ number).to_bytes(_NONCE_SIZE, "big"), packet[end:], header
        )
    except InvalidTag as exc:
        raise CryptoError(str(exc)) from None
    return header, payload, number


def seal_short(pair: CryptoPair, header: bytes, payload: bytes, number: int) -> bytes:
    """``pair.encrypt_packet(header, payload, number)`` for a packet with a
    short header: the packet as it goes on the wire."""
    send = pair.send
    aead: Any = send.aead
    hp: Any = send.hp
    if pair._update_key_requested or aead is None or not _usable(aead, hp):
        return pair.encrypt_packet(header, payload, number)
    sealed = aead._aead.encrypt(
        (aead._iv ^ number).to_bytes(_NONCE_SIZE, "big"), payload, header
    )
    length = (header[0] & 3) + 1
    pn_offset = len(header) - length
    sample = _PACKET_NUMBER_MAX_SIZE - length
    mask = hp._mask(sealed[sample : sample + _SAMPLE_SIZE])
    masked = int.from_bytes(header[pn_offset:], "big") ^ int.from_bytes(
        mask[1 : 1 + length], "big"
    )
    return (
        bytes((header[0] ^ (mask[0] & _SHORT_HEADER_MASK),))
        + header[1:pn_offset]
        + masked.to_bytes(length, "big")
        + sealed
    )


_shapes: dict[tuple[type, type], bool] = {}
"""Whether keys of these classes have the attributes this module reads."""


def _usable(aead: Any, hp: Any) -> bool:
    shape = (type(aead), type(hp))
    usable = _shapes.get(shape)
    if usable is None:
        usable = _shapes[shape] = (
            isinstance(aead, AEAD)
            and isinstance(hp, HeaderProtection)
            and all(hasattr(aead, name) for name in PRIVATE_ATTRIBUTES[AEAD])
            and all(hasattr(hp, name) for name in PRIVATE_ATTRIBUTES[HeaderProtection])
        )
    return usable
