"""The NACK datagram: a receiver of a hop asks its sender to send packets again.

One NACK names one track and a list of its 16-bit sequence numbers, packed as
RFC 4585's generic NACK does: entries of a first sequence number and a 16-bit
mask of the next sixteen. The format is drawn in ``docs/media.md``;
:func:`codec.media.packet.parse_packet` dispatches NACK datagrams here.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import ErrorCode, LocalProtocolError
from ._wire import PacketKind, first_byte, pack
from .errors import PacketError
from .seqnum import seq_delta

__all__ = [
    "MAX_NACK_ENTRIES",
    "NACK_HEADER_SIZE",
    "NackPacket",
    "nack_packets",
    "parse_nack",
]

MAX_NACK_ENTRIES = 255
"""Most (first sequence number, mask) entries in one NACK: up to 4,335 packets
in 1,026 bytes."""

_HEADER = struct.Struct(">BBI")
_ENTRY = struct.Struct(">HH")
NACK_HEADER_SIZE = _HEADER.size
_MAX_LAYER = 0b111


@dataclass(frozen=True, slots=True)
class NackPacket:
    """Asks the sender of this hop to retransmit packets of ``track_id``.

    Sent receiver → SFU for the SFU → receiver hop, and SFU → publisher for the
    publisher → SFU hop; each sender answers from its own retransmit cache.
    """

    track_id: int
    """The track whose packets are missing (32 bits)."""
    entries: tuple[tuple[int, int], ...]
    """``(first, mask)`` pairs: ``first`` (16 bits) is missing, and bit ``i`` of
    ``mask`` (least significant first) says ``first + 1 + i`` is missing too."""
    layer: int = 0
    """The spatial layer whose sequence numbers these are (0 to 7, byte 0's
    flags): each simulcast layer numbers its packets on its own
    (``docs/media.md`` section 7). 0 for a single-layer track, and always
    on the SFU → subscriber hop, where a track is one stream."""

    @classmethod
    def from_seqs(
        cls, track_id: int, seqs: Iterable[int], layer: int = 0
    ) -> NackPacket:
        """The NACK naming ``seqs`` (16-bit sequence numbers, any order, close
        to one another so their wrap-around order is unambiguous) of spatial
        ``layer``."""
        unique = {s & 0xFFFF for s in seqs}
        if not unique:
            raise LocalProtocolError(
                "a NACK must name at least one packet", ErrorCode.INVALID_ARGUMENT
            )
        # Sorted by distance on the circle from any one of them, so a run
        # across the wrap (65534, 65535, 0) stays one run.
        pivot = next(iter(unique))
        ordered = sorted(unique, key=lambda s: seq_delta(s, pivot))
        entries: list[tuple[int, int]] = []
        first, mask = ordered[0], 0
        for seq in ordered[1:]:
            offset = seq_delta(seq, first) - 1
            if 0 <= offset < 16:
                mask |= 1 << offset
            else:
                entries.append((first, mask))
                first, mask = seq, 0
        entries.append((first, mask))
        return cls(track_id, tuple(entries), layer)

    def seqs(self) -> list[int]:
        """Every sequence number named, in entry order."""
        out = []
        for first, mask in self.entries:
            out.append(first)
            out.extend(
                (first + 1 + bit) & 0xFFFF for bit in range(16) if mask >> bit & 1
            )
        return out

    def serialize(self) -> bytes:
        """The datagram bytes: 6-byte header, then 4 bytes per entry."""
        if not 1 <= len(self.entries) <= MAX_NACK_ENTRIES:
            raise LocalProtocolError(
                f"a NACK holds 1 to {MAX_NACK_ENTRIES} entries, not "
                f"{len(self.entries)}: split it",
                ErrorCode.INVALID_ARGUMENT,
            )
        if not 0 <= self.layer <= _MAX_LAYER:
            raise LocalProtocolError(
                f"a NACK's layer is 0 to {_MAX_LAYER}, not {self.layer}",
                ErrorCode.INVALID_ARGUMENT,
            )
        header = pack(
            _HEADER,
            "nack",
            first_byte(PacketKind.NACK, self.layer),
            len(self.entries),
            self.track_id,
        )
        body = b"".join(pack(_ENTRY, "nack entry", *entry) for entry in self.entries)
        return header + body


def parse_nack(view: memoryview) -> NackPacket:
    """Parse a NACK datagram whose byte 0 has already been checked."""
    if len(view) < _HEADER.size:
        raise PacketError(f"nack datagram of {len(view)} bytes is truncated")
    first, count, track_id = _HEADER.unpack_from(view)
    if count == 0:
        raise PacketError("nack with no entries")
    if len(view) != _HEADER.size + count * _ENTRY.size:
        raise PacketError(
            f"nack of {len(view)} bytes does not hold exactly {count} entries"
        )
    entries = tuple(
        _ENTRY.unpack_from(view, _HEADER.size + i * _ENTRY.size) for i in range(count)
    )
    return NackPacket(track_id, entries, first & _MAX_LAYER)


def nack_packets(
    track_id: int, seqs: Iterable[int], layer: int = 0
) -> list[NackPacket]:
    """``seqs`` of ``track_id``'s spatial ``layer`` as few NACKs as hold them
    (each at most :data:`MAX_NACK_ENTRIES` entries); none for no sequence
    numbers."""
    seqs = list(seqs)
    if not seqs:
        return []
    entries = NackPacket.from_seqs(track_id, seqs).entries
    return [
        NackPacket(track_id, entries[i : i + MAX_NACK_ENTRIES], layer)
        for i in range(0, len(entries), MAX_NACK_ENTRIES)
    ]
