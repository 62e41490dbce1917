"""One run of one transfer, as the upload and download loops see it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..session import Session
from .records import ACTIVE, Progress, Transfer
from .streams import Rate

if TYPE_CHECKING:
    from .manager import Transfers

__all__ = ["CHUNK", "WINDOW", "Job"]

WINDOW = 1024 * 1024
"""Bytes a transfer may run ahead of what the other side has confirmed; also
how often it saves its progress and looks whether it should stop."""
CHUNK = 256 * 1024
"""Bytes an upload reads from its file per trip to the executor: each trip
costs about 90 µs of CPU (a thread woken, the loop woken back), 1.4 ms per
MB at 64 KiB against 0.4 at 256 KiB (``bench/cpu_costs.py``; see
docs/performance.md, "The controller per packet, ACKs in runs, a burst's
events once"), while a quarter of :data:`WINDOW` still keeps four reads in
flight."""


class Job:
    """A transfer's row while one attempt of it runs: what it may change (its
    row, its progress), and whether it was asked to stop (pause, cancel)."""

    def __init__(self, owner: Transfers, transfer: Transfer) -> None:
        self.owner = owner
        self.transfer = transfer
        self.session: Session = owner.session
        self.rate = Rate()

    @property
    def stopping(self) -> bool:
        """Pause or cancel was asked for."""
        return self.transfer.id in self.owner.stopping

    async def set(self, **fields: Any) -> Transfer:
        """Update the stored row (and tell the listeners)."""
        self.transfer = await self.owner.save(self.transfer.id, **fields)
        return self.transfer

    async def should_stop(self) -> bool:
        """Whether to stop, also when the row changed underneath (another
        process of the same account paused or cancelled it)."""
        if self.stopping:
            return True
        state = (await self.owner.get(self.transfer.id)).state
        if state != ACTIVE:
            self.owner.stopping[self.transfer.id] = state
            return True
        return False

    def report(self, done: int, *, checking: bool = False) -> None:
        """Tell :attr:`Transfers.on_progress`: ``done`` bytes (hashed, while
        ``checking``), the recent rate and the time left."""
        size = self.transfer.size
        bps = self.rate.update(done)
        eta = (size - done) / bps if bps > 0 else None
        progress = Progress(self.transfer.id, done, size, bps, eta, checking)
        self.owner.on_progress(progress)
