"""The transfers of one user: started, paused, resumed and cancelled here,
kept in the local store, each run to its end through reconnects."""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from codec.messages import (
    CancelFile,
    Event,
    FileCancelled,
    FileInfo,
    FileList,
    ListFiles,
    Reply,
)

from ..errors import ClientError, ConnectionLost, NotConnected, ServerError
from ..session import Session
from ..store import LocalStore
from .download import download
from .files import unique_path
from .job import Job
from .records import (
    ACTIVE,
    CANCELLED,
    DONE,
    FAILED,
    PAUSED,
    Interrupted,
    Progress,
    Transfer,
    TransferError,
    from_row,
)
from .upload import upload

__all__ = ["Transfers"]

log = logging.getLogger("quicmeet.transfers")

RECONNECT_WAIT_S = 60.0
"""How long a transfer (or a listing) cut off by a lost connection waits for
the session to be back before it gives up."""


class Transfers:
    """Uploads and downloads of one user, persisted in the local store.

    ``downloads`` is where received files go. ``max_parallel`` bounds transfers
    running at once. With ``auto_resume`` interrupted transfers restart after
    every login and reconnect. An upload with at least ``pump_at`` bytes left
    to send sends them from an upload pump process of its own
    (:mod:`client.transfers.pump`); a download with at least ``link_at``
    bytes left comes on a transfer connection of its own
    (:mod:`client.transfers.link`); None keeps everything on the session's
    connection.
    """

    def __init__(
        self,
        session: Session,
        store: LocalStore,
        downloads: Path,
        *,
        max_parallel: int = 3,
        auto_resume: bool = False,
        pump_at: int | None = None,
        link_at: int | None = None,
    ) -> None:
        self.session = session
        self.store = store
        self.downloads = downloads
        self.auto_resume = auto_resume
        self.pump_at = pump_at
        self.link_at = link_at
        self.pumps: dict[int, int] = {}
        """The process id of each transfer's running upload pump."""
        self.media_active: Callable[[], bool] = lambda: False
        """Whether a meeting's media flow now: upload pumps then give way to
        them (set by the engine's account; docs/adaptation.md, "Files beside
        a meeting")."""
        self.on_progress: Callable[[Progress], None] = lambda progress: None
        self.on_change: Callable[[Transfer], None] = lambda transfer: None
        self._slots = asyncio.Semaphore(max_parallel)
        self._running: dict[int, asyncio.Task[Transfer]] = {}
        self.stopping: dict[int, str] = {}
        """Transfers asked to stop (paused or cancelled), and which."""
        session.add_login_hook(self._after_login)
        session.add_event_hook(self._on_event)

    # -- local rows (store thread) ----------------------------------------------

    def _row(self, transfer_id: int) -> Transfer:
        row = self.store.Transfer.get_or_none(self.store.Transfer.id == transfer_id)
        if row is None:
            raise TransferError(f"no transfer {transfer_id}")
        return from_row(row)

    def _update(self, transfer_id: int, **fields: Any) -> Transfer:
        fields["updated_ms"] = int(time.time() * 1000)
        T = self.store.Transfer
        T.update(**fields).where(T.id == transfer_id).execute()
        return self._row(transfer_id)

    def _create(self, **fields: Any) -> Transfer:
        now = int(time.time() * 1000)
        row = self.store.Transfer.create(created_ms=now, updated_ms=now, **fields)
        return from_row(row)

    def _all(self) -> builtins.list[Transfer]:
        T = self.store.Transfer
        return [from_row(row) for row in T.select().order_by(T.id)]

    async def save(self, transfer_id: int, **fields: Any) -> Transfer:
        """Update a transfer's stored row and tell :attr:`on_change`."""
        transfer = await self.store.run(lambda: self._update(transfer_id, **fields))
        self.on_change(transfer)
        return transfer

    # -- public API -----------------------------------------------------------

    async def list(self) -> builtins.list[Transfer]:
        """Every transfer known locally, oldest first."""
        return await self.store.run(self._all)

    async def get(self, transfer_id: int) -> Transfer:
        return await self.store.run(self._row, transfer_id)

    async def remote(self) -> builtins.list[FileInfo]:
        """Files we sent or received that the server still holds. A listing
        cut off by a lost connection is asked again once the session is back
        (it changes nothing, so asking twice is harmless), as a transfer
        rides out a reconnect."""
        while True:
            try:
                return (await self.session.call(ListFiles, FileList)).files
            except (ConnectionLost, NotConnected):
                await self.session.wait_ready(RECONNECT_WAIT_S)

    async def send(self, peer: str, path: Path) -> Transfer:
        """Send the file at ``path`` to the friend ``peer`` and wait until the
        server holds it (or the transfer is paused). The transfer is listed at
        once; hashing the file is its first step (``checking`` progress)."""
        path = path.resolve()
        if not path.is_file():
            raise TransferError(f"{path} is not a file")
        stat = path.stat()
        transfer = await self.store.run(
            lambda: self._create(
                direction="up",
                peer=peer.lower(),
                name=path.name,
                path=str(path),
                size=stat.st_size,
                state=ACTIVE,
            )
        )
        self.on_change(transfer)
        return await self._start(transfer.id)

    async def download(self, file_id: str, dest: Path | None = None) -> Transfer:
        """Download the file ``file_id`` (to ``dest``, a file or a directory;
        default the downloads folder) and wait until it is verified in place."""
        info = next((f for f in await self.remote() if f.file_id == file_id), None)
        if info is None:
            raise TransferError(f"no file {file_id} on the server")
        if info.state != "ready":
            raise TransferError(f"{info.name} is {info.state}, not ready yet")
        if dest is None or dest.is_dir():
            directory = dest or self.downloads
            directory.mkdir(parents=True, exist_ok=True)
            target = unique_path(directory, info.name)
        else:
            target = dest
        transfer = await self.store.run(
            lambda: self._create(
                direction="down",
                file_id=file_id,
                peer=info.sender,
                name=info.name,
                path=str(target),
                size=info.size,
                sha256=info.sha256,
                state=ACTIVE,
            )
        )
        self.on_change(transfer)
        return await self._start(transfer.id)

    async def pause(self, transfer_id: int) -> Transfer:
        """Stop a transfer where it is; :meth:`resume` continues it."""
        self.stopping[transfer_id] = PAUSED
        task = self._running.get(transfer_id)
        transfer = await self.save(transfer_id, state=PAUSED)
        if task is not None:
            await asyncio.wait([task])
        return transfer

    async def resume(self, transfer_id: int) -> Transfer:
        """Continue a paused, failed or interrupted transfer and wait for it."""
        transfer = await self.get(transfer_id)
        if transfer.state in (DONE, CANCELLED):
            return transfer
        await self.save(transfer_id, state=ACTIVE, error="")
        return await self._start(transfer_id)

    async def cancel(self, transfer_id: int) -> Transfer:
        """Cancel a transfer here and on the server."""
        self.stopping[transfer_id] = CANCELLED
        transfer = await self.get(transfer_id)
        task = self._running.get(transfer_id)
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        if transfer.file_id is not None:
            try:
                await self.session.call(CancelFile, Reply, file_id=transfer.file_id)
            except ServerError as exc:
                log.info("server did not cancel %s: %s", transfer.file_id, exc)
        if transfer.direction == "down":
            Path(transfer.path + ".part").unlink(missing_ok=True)
        return await self.save(transfer_id, state=CANCELLED)

    async def resume_interrupted(self) -> builtins.list[Transfer]:
        """Restart every transfer left active by a lost connection or a crash."""
        pending = [t for t in await self.list() if t.state == ACTIVE]
        for transfer in pending:
            if transfer.id not in self._running:
                self._spawn(transfer.id)
        return pending

    # -- running --------------------------------------------------------------

    def _spawn(self, transfer_id: int) -> asyncio.Task[Transfer]:
        task = asyncio.get_running_loop().create_task(self._run(transfer_id))
        self._running[transfer_id] = task
        task.add_done_callback(lambda _: self._running.pop(transfer_id, None))
        return task

    async def _start(self, transfer_id: int) -> Transfer:
        task = self._running.get(transfer_id) or self._spawn(transfer_id)
        return await task

    async def _run(self, transfer_id: int) -> Transfer:
        """Run a transfer to its end, riding out reconnects."""
        self.stopping.pop(transfer_id, None)
        async with self._slots:
            wire = 0
            while True:
                transfer = await self.get(transfer_id)
                if transfer.state != ACTIVE:
                    return transfer
                try:
                    move = upload if transfer.direction == "up" else download
                    transfer, moved = await move(Job(self, transfer))
                    return replace(transfer, wire_bytes=wire + moved)
                except Interrupted as exc:
                    wire += exc.moved
                    stop = self.stopping.pop(transfer_id, None)
                    if stop is not None:
                        return replace(await self.get(transfer_id), wire_bytes=wire)
                    try:
                        await self.session.wait_ready(RECONNECT_WAIT_S)
                    except ClientError as lost:
                        await self.save(transfer_id, error=str(lost))
                        raise
                except (TransferError, ServerError) as exc:
                    await self.save(transfer_id, state=FAILED, error=str(exc))
                    raise

    # -- hooks ----------------------------------------------------------------

    async def _after_login(self) -> None:
        if self.auto_resume:
            await self.resume_interrupted()

    def _on_event(self, event: Event) -> None:
        if isinstance(event, FileCancelled):
            asyncio.get_running_loop().create_task(
                self._cancelled_remotely(event.file_id)
            )

    async def _cancelled_remotely(self, file_id: str) -> None:
        for transfer in await self.list():
            if transfer.file_id == file_id and transfer.state not in (DONE, CANCELLED):
                self.stopping[transfer.id] = CANCELLED
                task = self._running.get(transfer.id)
                if task is not None:
                    task.cancel()
                await self.save(
                    transfer.id, state=CANCELLED, error="cancelled by the other side"
                )
