"""What a transfer is, as stored locally and as reported while it runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ClientError

__all__ = [
    "ACTIVE",
    "CANCELLED",
    "DONE",
    "FAILED",
    "PAUSED",
    "Interrupted",
    "Progress",
    "Transfer",
    "TransferError",
    "from_row",
]

ACTIVE, PAUSED, DONE, FAILED, CANCELLED = (
    "active",
    "paused",
    "done",
    "failed",
    "cancelled",
)


class TransferError(ClientError):
    """A transfer could not go on (file changed, disk full, bad content)."""


@dataclass(frozen=True, slots=True)
class Transfer:
    """One upload (``direction`` ``up``) or download (``down``) as stored locally.

    ``done`` counts bytes the other side has safely stored (uploads) or that are
    in the local file (downloads); ``wire_bytes`` counts content bytes this
    process moved over the network for it; ``instant`` means the upload finished
    through a proof of ownership, without content bytes.
    """

    id: int
    direction: str
    file_id: str | None
    peer: str
    name: str
    path: str
    size: int
    sha256: str | None
    done: int
    state: str
    instant: bool
    error: str
    wire_bytes: int = 0


@dataclass(frozen=True, slots=True)
class Progress:
    """A progress report: ``done`` of ``size`` bytes, ``rate_bps`` recent rate
    (bytes per second), ``eta_s`` seconds left (None when unknown).

    ``checking``: an upload is still hashing its file (``done`` counts the
    bytes hashed); the reports of the bytes sent follow, from where the
    server's copy ends."""

    transfer_id: int
    done: int
    size: int
    rate_bps: float
    eta_s: float | None
    checking: bool = False


class Interrupted(Exception):
    """The transfer stopped early (connection lost, paused); ``moved`` bytes went
    over the network before that."""

    def __init__(self, moved: int) -> None:
        super().__init__("interrupted")
        self.moved = moved


def from_row(row: Any) -> Transfer:
    return Transfer(
        id=row.id,
        direction=row.direction,
        file_id=row.file_id,
        peer=row.peer,
        name=row.name,
        path=row.path,
        size=row.size,
        sha256=row.sha256,
        done=row.done,
        state=row.state,
        instant=row.instant,
        error=row.error,
    )
