"""How queued datagrams become system calls: UDP segmentation offload plans.

Pure: takes the datagrams queued in one loop turn and returns the batches to
hand to the kernel, each one ``sendmsg`` with a ``UDP_SEGMENT`` size (GSO) or
one plain ``sendto``. The kernel cuts a GSO buffer into datagrams of exactly
the segment size, the last one possibly shorter, all to one address; so a
batch holds consecutive datagrams to one address whose sizes are all equal
but the last, which may be shorter. Order is kept per address (QUIC tolerates
reordering across peers, not within a connection's burst it just built).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_GSO_BYTES", "MAX_GSO_SEGMENTS", "SendBatch", "plan_batches", "split"]

MAX_GSO_SEGMENTS = 64
"""Segments in one GSO send (the kernel's UDP_MAX_SEGMENTS is 64 on older
kernels, 128 on newer ones)."""
MAX_GSO_BYTES = 65_000
"""Bytes in one GSO send: below the 65,507-byte UDP payload limit of IPv4."""


@dataclass(slots=True)
class SendBatch:
    """One system call's worth of datagrams to ``addr``.

    ``segment_size`` is the size of every datagram but the last (in bytes);
    a batch of one datagram is sent without GSO.
    """

    addr: Any
    segment_size: int
    datagrams: list[bytes]


def plan_batches(
    queued: Iterable[tuple[bytes, Any]],
    gso: bool,
    max_segments: int = MAX_GSO_SEGMENTS,
    max_bytes: int = MAX_GSO_BYTES,
) -> list[SendBatch]:
    """Group ``(data, addr)`` pairs, in the order they were queued, into the
    fewest batches the rules above allow; without ``gso`` every datagram is a
    batch of its own."""
    if not gso:
        return [SendBatch(addr, len(data), [data]) for data, addr in queued]
    by_addr: dict[Any, list[bytes]] = {}
    for data, addr in queued:
        by_addr.setdefault(addr, []).append(data)
    batches: list[SendBatch] = []
    for addr, datagrams in by_addr.items():
        current: SendBatch | None = None
        total = 0
        for data in datagrams:
            size = len(data)
            if (
                current is not None
                and size <= current.segment_size
                and len(current.datagrams) < max_segments
                and total + size <= max_bytes
                # A shorter datagram ends a batch: nothing may follow it.
                and len(current.datagrams[-1]) == current.segment_size
            ):
                current.datagrams.append(data)
                total += size
                continue
            current = SendBatch(addr, size, [data])
            batches.append(current)
            total = size
    return batches


def split(data: bytes, segment_size: int) -> Sequence[bytes]:
    """Cut a buffer the kernel coalesced (GRO) back into its datagrams of
    ``segment_size`` bytes, the last one possibly shorter."""
    if segment_size <= 0 or len(data) <= segment_size:
        return (data,)
    view = memoryview(data)
    return [
        bytes(view[i : i + segment_size]) for i in range(0, len(data), segment_size)
    ]
