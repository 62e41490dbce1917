"""How far a file sender may run ahead of what the receiver has confirmed
written: a window that grows while the path keeps up with it.

A file stream's sender keeps at most a window of bytes beyond the
receiver's last ``TransferProgress`` (docs/protocol.md); that bounds the
memory on both ends. Its throughput is then at most the window per round
trip of a confirmation, and that round trip is more than the network's: the
receiver writes in batches (on its disk thread) before it confirms. On
loopback or a LAN a fixed 1 MiB window held the sender back most of the time
(``bench/files.py --trace``: its QUIC connection had nothing to send 60-70%
of the transfer, while the congestion window was far from full).

:class:`TransferWindow` starts at :data:`MIN_WINDOW` and doubles, at most
once per round of confirmations, whenever the sender finds it full while its
QUIC connection has sent nearly all of it (so the window, not the path,
holds the sender back), up to :data:`MAX_WINDOW`. When the window is full
because the bytes wait in the connection's queue (the path is slower than
the window: a slow or lossy link), it halves back, never below
:data:`MIN_WINDOW`: there a larger window would only queue more bytes
behind the congestion window. Pure: it sees byte counts only.
"""

from __future__ import annotations

__all__ = ["GROW_UNSENT_FRACTION", "MAX_WINDOW", "MIN_WINDOW", "TransferWindow"]

MiB = 1024 * 1024
MIN_WINDOW = 1 * MiB
"""The window a transfer starts with, and the least it keeps (bytes)."""
MAX_WINDOW = 4 * MiB
"""The most a sender runs ahead (bytes): at 4 MiB a confirmation round trip
of 100 ms still allows 40 MB/s; a receiver accepts a backlog of twice this."""
GROW_UNSENT_FRACTION = 0.25
"""A full window whose bytes are at most this fraction unsent by the QUIC
connection is the window's limit, not the path's: it grows."""
SHRINK_UNSENT_FRACTION = 0.5
"""A full window whose bytes are more than this fraction unsent waits for the
path: it shrinks."""


class TransferWindow:
    """The window of one file stream's sender, in bytes (:attr:`size`)."""

    def __init__(self, minimum: int = MIN_WINDOW, maximum: int = MAX_WINDOW) -> None:
        if not 0 < minimum <= maximum:
            raise ValueError("need 0 < minimum <= maximum")
        self.minimum = minimum
        self.maximum = maximum
        self.size = minimum
        self._round_end = 0
        """The position when the window last changed: it changes again once
        the receiver has confirmed that far (one round of confirmations)."""

    def full(self, position: int, confirmed: int, unsent: int) -> None:
        """The sender found the window full: it has handed the connection the
        stream up to ``position``, the receiver has confirmed ``confirmed``,
        and ``unsent`` of the bytes handed over have not left yet."""
        if confirmed < self._round_end:
            return
        ahead = max(1, position - confirmed)
        if unsent <= ahead * GROW_UNSENT_FRACTION and self.size < self.maximum:
            self.size = min(self.maximum, self.size * 2)
            self._round_end = position
        elif unsent > ahead * SHRINK_UNSENT_FRACTION and self.size > self.minimum:
            self.size = max(self.minimum, self.size // 2)
            self._round_end = position
