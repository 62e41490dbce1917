"""File transfers as the views see them: every upload and download with its
progress, and the files friends sent that wait to be downloaded.

The transfers themselves (resumable, verified, persisted) are
:class:`client.transfers.Transfers`; this model turns its callbacks and the
file events into :class:`~client.engine.model.TransfersChanged` snapshots, at most
ten a second however fast the bytes move.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from codec.messages import (
    CancelFile,
    Event,
    FileCancelled,
    FileDelivered,
    FileOffered,
    Ok,
)

from ...session import Session
from ...store import LocalStore
from ...transfers import Progress, Transfer, Transfers
from ..model import (
    FileOfferEntry,
    Notice,
    TransferEntry,
    TransfersChanged,
    UiEvent,
    human_size,
)

__all__ = ["FilesModel", "default_downloads"]

PUMP_AT = 64 * 1024 * 1024
"""Uploads with this many bytes or more left send them from an upload pump
process (``docs/engine.md``): the meeting's media on the engine's loop no
longer slows them. Below it, a pump's start (about 0.3 s) costs more than
it saves."""
LINK_AT = 1024 * 1024
"""Downloads with this many bytes or more left come on a transfer connection
of their own, which the server lets give way to the user's meeting
(``client/transfers/link.py``); a connection's handshake costs a few ms."""

PUBLISH_INTERVAL_S = 0.1
"""Shortest time between two snapshots (progress arrives every MiB)."""
MAX_FINISHED_SHOWN = 200
"""Finished transfers kept in the snapshot (unfinished ones always are)."""


def default_downloads() -> Path:
    """Where received files go unless the settings say otherwise."""
    env = os.environ.get("XDG_DOWNLOAD_DIR")
    return Path(env) if env else Path.home() / "Downloads"


class FilesModel:
    """The signed-in user's transfers; create before login (it resumes
    interrupted transfers at every login)."""

    def __init__(
        self,
        session: Session,
        store: LocalStore,
        post: Callable[[UiEvent], None],
        downloads: Path,
    ) -> None:
        self._session = session
        self._post = post
        self.transfers = Transfers(
            session,
            store,
            downloads,
            auto_resume=True,
            pump_at=PUMP_AT,
            link_at=LINK_AT,
        )
        self.transfers.on_change = self._on_change
        self.transfers.on_progress = self._on_progress
        self._entries: dict[int, TransferEntry] = {}
        self._offers: dict[str, FileOfferEntry] = {}
        self._file_ids: dict[int, str] = {}
        self._delivered: set[str] = set()
        self._publish_handle: asyncio.TimerHandle | None = None
        self._loading = False

    async def load(self) -> None:
        """Read the local transfers and the server's files, then publish."""
        self._loading = True
        try:
            for transfer in await self.transfers.list():
                self._on_change(transfer)
        finally:
            self._loading = False
        await self.refresh_offers()

    async def refresh_offers(self) -> None:
        """Ask the server which files wait for us and which of ours arrived."""
        files = await self.transfers.remote()
        me = self._session.profile.username if self._session.profile else ""
        local = set(self._file_ids.values())
        self._offers = {
            f.file_id: FileOfferEntry(f.file_id, f.sender, f.name, f.size, f.created_ms)
            for f in files
            if f.recipient == me
            and f.state == "ready"
            and not f.downloaded
            and f.file_id not in local
        }
        self._delivered = {f.file_id for f in files if f.sender == me and f.downloaded}
        self._entries = {
            key: replace(entry, delivered=self._file_ids.get(key) in self._delivered)
            for key, entry in self._entries.items()
        }
        self._schedule()

    async def decline(self, file_id: str) -> None:
        """Refuse a file offered to us: the server drops it and the sender is
        told."""
        await self._session.call(CancelFile, Ok, file_id=file_id)
        self._offers.pop(file_id, None)
        self._schedule()

    def on_event(self, event: Event, sender_name: Callable[[str], str]) -> bool:
        """Apply a file event; return False if it is not one."""
        if isinstance(event, FileOffered):
            info = event.file
            # The server offers again at each login what still waits: a notice
            # only for an offer not known yet.
            if (
                info.file_id not in self._file_ids.values()
                and info.file_id not in self._offers
            ):
                self._offers[info.file_id] = FileOfferEntry(
                    info.file_id, info.sender, info.name, info.size, info.created_ms
                )
                self._post(
                    Notice(
                        sender_name(info.sender),
                        f"sent you {info.name} ({human_size(info.size)})",
                        peer=info.sender,
                    )
                )
        elif isinstance(event, FileCancelled):
            self._offers.pop(event.file_id, None)
        elif isinstance(event, FileDelivered):
            self._delivered.add(event.file_id)
            for key, file_id in self._file_ids.items():
                if file_id == event.file_id and key in self._entries:
                    self._entries[key] = replace(self._entries[key], delivered=True)
        else:
            return False
        self._schedule()
        return True

    # -- callbacks of Transfers ------------------------------------------------------

    def _on_change(self, transfer: Transfer) -> None:
        old = self._entries.get(transfer.id)
        active = transfer.state == "active"
        checking = active and transfer.direction == "up" and transfer.sha256 is None
        # What a running transfer reported carries over, unless it moved from
        # hashing to sending.
        carry = old is not None and active and old.checking == checking
        finished = transfer.state in ("done", "cancelled")
        if transfer.file_id is not None:
            self._file_ids[transfer.id] = transfer.file_id
            if transfer.direction == "down":
                self._offers.pop(transfer.file_id, None)
        self._entries[transfer.id] = TransferEntry(
            id=transfer.id,
            direction=transfer.direction,
            peer=transfer.peer,
            name=transfer.name,
            path=transfer.path,
            size=transfer.size,
            done=max(transfer.done, old.done if old and carry else 0),
            state=transfer.state,
            error=transfer.error,
            rate_bps=old.rate_bps if old and carry else 0.0,
            eta_s=old.eta_s if old and carry else None,
            instant=transfer.instant,
            delivered=transfer.file_id in self._delivered,
            recent=(old is not None and old.recent)
            or not self._loading
            or not finished,
            checking=checking,
            file_id=transfer.file_id or "",
        )
        self._schedule()

    def _on_progress(self, progress: Progress) -> None:
        entry = self._entries.get(progress.transfer_id)
        if entry is None:
            return
        same_phase = progress.checking == entry.checking
        self._entries[progress.transfer_id] = replace(
            entry,
            done=max(entry.done, progress.done) if same_phase else progress.done,
            rate_bps=progress.rate_bps,
            eta_s=progress.eta_s,
            checking=progress.checking,
        )
        self._schedule()

    # -- publishing ----------------------------------------------------------------

    def _schedule(self) -> None:
        if self._publish_handle is None:
            self._publish_handle = asyncio.get_running_loop().call_later(
                PUBLISH_INTERVAL_S, self.publish
            )

    def publish(self) -> None:
        """Post a snapshot now."""
        if self._publish_handle is not None:
            self._publish_handle.cancel()
            self._publish_handle = None
        newest_first = sorted(self._entries.values(), key=lambda e: -e.id)
        unfinished = [e for e in newest_first if not e.finished]
        finished = [e for e in newest_first if e.finished][:MAX_FINISHED_SHOWN]
        shown = sorted(unfinished + finished, key=lambda e: -e.id)
        offers = sorted(self._offers.values(), key=lambda o: -o.sent_ms)
        self._post(TransfersChanged(tuple(shown), tuple(offers)))

    def close(self) -> None:
        if self._publish_handle is not None:
            self._publish_handle.cancel()
            self._publish_handle = None
