"""The byte streams of file transfers: uploads into partial files, downloads out
of blobs, both resumable at any offset and with memory bounded by a window.

Each side reports with ``TransferProgress`` frames how far it has safely
written; the sending side never runs more than ``WINDOW`` bytes ahead of the
last report. That bounds memory on both ends whatever the file size, and makes
the progress a sender shows mean "stored on the other side".
"""

from __future__ import annotations

import abc
import asyncio
import logging
import os
from collections import deque
from typing import TYPE_CHECKING, Any

import peewee

from codec import FrameDecoder, MessageError, OversizedFrame
from codec.errors import ErrorCode
from codec.messages import (
    DownloadFile,
    FileData,
    FileDelivered,
    FileStored,
    Reply,
    TransferProgress,
    UploadFile,
)
from codec.protocol import decode_progress

from .blobs import BlobStore, DiskFull
from .errors import ServiceError
from .files import file_info
from .quic_adapter import give_way
from .storage.models import FileTransfer

if TYPE_CHECKING:
    from .connection import ClientConnection
    from .files import FileService
    from .streams import StreamHandler

__all__ = ["DownloadStream", "TransferStream", "UploadStream", "WINDOW"]

log = logging.getLogger("quicmeet.files")

WINDOW = 1024 * 1024
"""Bytes a sender may have in flight beyond the receiver's last progress report."""
WRITE_BATCH = 512 * 1024
WAKE_AFTER = 128 * 1024
"""Bytes of an upload to gather before waking the writer."""
BATCH_WAIT = 0.02
"""Seconds the writer waits for a batch before writing what it has."""
PROGRESS_EVERY = 128 * 1024
READ_CHUNK = 256 * 1024


class TransferStream(abc.ABC):
    """What uploads and downloads share: registration, validation, teardown."""

    def __init__(
        self,
        service: FileService,
        conn: ClientConnection,
        stream: StreamHandler,
        file_id: str,
        user_id: int,
    ) -> None:
        self.service = service
        self.conn = conn
        self.stream = stream
        self.file_id = file_id
        self.user_id = user_id
        self.closed = False
        service.active.setdefault(file_id, set()).add(self)
        service.streams_per_user[user_id] += 1
        self.task = asyncio.get_running_loop().create_task(self._run_guarded())

    async def _run_guarded(self) -> None:
        try:
            await self.run()
        except ServiceError as exc:
            self.stream.fail(exc.code, exc.message, exc.retry_after_ms)
        except asyncio.CancelledError:
            # Ends quietly: a task that ends cancelled keeps its error, whose
            # traceback holds this frame and so this stream, which holds the
            # task: a cycle that would keep the connection after it ended
            # (server/heap.py). Nothing awaits this task for its outcome.
            return
        except peewee.OperationalError as exc:
            if "full" not in str(exc):
                raise
            log.error("storage full during a file transfer: %s", exc)
            self.stream.fail(ErrorCode.STORAGE_FULL, "the server's disk is full", 5000)
        except Exception:
            log.exception("file stream failed")
            self.stream.fail(ErrorCode.INTERNAL, "internal error")
        finally:
            self._release()

    @abc.abstractmethod
    async def run(self) -> None:
        """The transfer itself; raise :class:`ServiceError` to fail the stream."""

    def _release(self) -> None:
        if self.closed:
            return
        self.closed = True
        streams = self.service.active.get(self.file_id)
        if streams is not None:
            streams.discard(self)
            if not streams:
                del self.service.active[self.file_id]
        self.service.streams_per_user[self.user_id] -= 1
        if self.service.streams_per_user[self.user_id] <= 0:
            del self.service.streams_per_user[self.user_id]

    def cancelled(self) -> None:
        """The transfer was cancelled: stop at once."""
        self.stream.fail(ErrorCode.CONFLICT, "the transfer was cancelled")
        self.abort()

    def abort(self) -> None:
        self.task.cancel()
        self._release()


class UploadStream(TransferStream):
    """Appends an upload to its partial file, hashing as it goes."""

    def __init__(
        self,
        service: FileService,
        conn: ClientConnection,
        stream: StreamHandler,
        req: UploadFile,
        user_id: int,
    ) -> None:
        self.req = req
        self._chunks: deque[bytes] = deque()
        self._backlog = 0
        self._arrived = asyncio.Event()
        self._ended = False
        self._result: asyncio.Future[Reply | None] = (
            asyncio.get_running_loop().create_future()
        )
        super().__init__(service, conn, stream, req.file_id, user_id)

    def received(self, data: bytes) -> None:
        self._backlog += len(data)
        if self._backlog > 2 * WINDOW:
            raise ServiceError(
                ErrorCode.INVALID_ARGUMENT, "the sender ignored the transfer window"
            )
        self._chunks.append(data)
        if self._backlog >= WAKE_AFTER:
            self._arrived.set()

    def stop_taking(self) -> None:
        """A newer upload of the same file takes over: write what has arrived
        and end (whatever comes after is not written)."""
        self._ended = True
        self._arrived.set()

    async def _after_older_uploads(self) -> None:
        """One writer per partial file: an upload of this file still open on
        another connection (one the client gave up, or a killed upload pump's,
        not timed out here yet) writes what it has and ends before this one
        reads where the file stands."""
        older = [
            s
            for s in self.service.active.get(self.file_id, ())
            if s is not self and isinstance(s, UploadStream) and not s.task.done()
        ]
        for stream in older:
            stream.stop_taking()
        if older:
            await asyncio.wait([s.task for s in older])

    async def finish(self) -> Reply | None:
        self._ended = True
        self._arrived.set()
        await asyncio.wait(
            [self._result, self.task], return_when=asyncio.FIRST_COMPLETED
        )
        # A failed upload has already answered with an Error: nothing more to send.
        return self._result.result() if self._result.done() else None

    async def run(self) -> None:
        service = self.service
        row, sender, recipient = await service.transfer(self.file_id)
        if row.sender_id != self.user_id:
            raise ServiceError(ErrorCode.NOT_FOUND, "no such file")
        if row.state != "uploading":
            raise ServiceError(ErrorCode.CONFLICT, f"the file is already {row.state}")
        await self._after_older_uploads()
        held = await service.run_io(service.blobs.partial_size, row.id)
        if self.req.offset != held:
            raise ServiceError(
                ErrorCode.CONFLICT,
                f"offset mismatch: the server holds {held} bytes, upload from there",
            )
        digest = await service.prefix_hash(row.id, held)
        fd = await service.run_io(service.blobs.open_partial, row.id)
        written = held
        reported = held
        try:
            while True:
                if self._backlog < WAKE_AFTER and not self._ended:
                    # Packets bring ~1.2 kB each: wait for a batch worth a write
                    # (or a moment, for the tail of a paused upload).
                    self._arrived.clear()
                    try:
                        await asyncio.wait_for(self._arrived.wait(), BATCH_WAIT)
                    except TimeoutError:
                        pass
                if not self._chunks:
                    if self._ended:
                        break
                    continue
                batch = []
                size = 0
                while self._chunks and size < WRITE_BATCH:
                    chunk = self._chunks.popleft()
                    batch.append(chunk)
                    size += len(chunk)
                self._backlog -= size
                data = b"".join(batch)
                if written + len(data) > row.size:
                    raise ServiceError(
                        ErrorCode.TOO_LARGE, f"more than the file's {row.size} bytes"
                    )
                try:
                    await service.run_io(_write_and_hash, fd, data, digest)
                except DiskFull:
                    service.hashers.pop(row.id, None)
                    service.ctx.stats["disk_full"] += 1
                    raise ServiceError(
                        ErrorCode.STORAGE_FULL,
                        "the server's disk is full; the upload resumes later",
                        5000,
                    ) from None
                written += len(data)
                service.hashers[row.id] = (written, digest)
                if written - reported >= PROGRESS_EVERY:
                    reported = written
                    self.stream.send(TransferProgress(written=written))
        finally:
            await service.run_io(_close, fd)
            try:
                await service.ctx.storage.run(_store_received, row.id, written)
            except peewee.OperationalError as exc:
                # Informative only: the partial file's length is the truth.
                log.warning("could not record upload progress: %s", exc)
        if written < row.size:
            self._result.set_result(
                FileStored(
                    rid=self.req.rid,
                    file_id=row.id,
                    received=written,
                    state="uploading",
                )
            )
            return
        if digest.hexdigest() != row.sha256:
            service.hashers.pop(row.id, None)
            await service.run_io(service.blobs.truncate_partial, row.id, 0)
            raise ServiceError(
                ErrorCode.INVALID_ARGUMENT,
                "the content does not match its SHA-256; upload it again from 0",
            )
        await service.run_io(service.blobs.commit, row.id, row.sha256)
        await service.complete(row, sender, recipient)
        self._result.set_result(
            FileStored(
                rid=self.req.rid, file_id=row.id, received=written, state="ready"
            )
        )


class DownloadStream(TransferStream):
    """Sends a blob from an offset, paced by the downloader's progress reports."""

    def __init__(
        self,
        service: FileService,
        conn: ClientConnection,
        stream: StreamHandler,
        req: DownloadFile,
        user_id: int,
    ) -> None:
        self.req = req
        self._decoder = FrameDecoder()
        self._acked = req.offset
        self._progress = asyncio.Event()
        super().__init__(service, conn, stream, req.file_id, user_id)

    def received(self, data: bytes) -> None:
        for frame in self._decoder.feed(data):
            if isinstance(frame, OversizedFrame):
                raise ServiceError(
                    ErrorCode.FRAME_TOO_LARGE, "progress frame too large"
                )
            try:
                progress = decode_progress(frame)
            except MessageError as exc:
                raise ServiceError(exc.code, exc.message) from None
            self._acked = max(self._acked, progress.written)
            self._progress.set()

    async def finish(self) -> Reply | None:
        """The downloader ended its side, so it acknowledges nothing more: the
        transfer ends as soon as it would wait for an acknowledgement."""
        self._progress.set()
        await asyncio.wait([self.task])
        return None

    async def _acknowledged(self, position: int) -> None:
        """Wait until the downloader has acknowledged up to ``position``."""
        while self._acked < position:
            if self.stream.peer_ended:
                raise ServiceError(
                    ErrorCode.INVALID_ARGUMENT,
                    "the downloader ended its stream before acknowledging the data",
                )
            self._progress.clear()
            await self._progress.wait()

    def give_way(self) -> None:
        """On a transfer connection (which carries only files), this side
        runs the scavenger controller while the user is in a meeting here and
        the media controller otherwise: looked at every chunk, so that a
        download gives way to a meeting that begins after it and takes the
        path back when the meeting ends (docs/adaptation.md, "Files beside a
        meeting"). On the session's own connection the media's controller
        stays: the media come on it."""
        conn = self.conn
        account = conn.account
        if account is None or not account.transfer_only:
            return
        meeting = self.service.in_meeting(self.user_id)
        if give_way(conn.quic, meeting):
            stat = "downloads_given_way" if meeting else "downloads_full_path"
            self.service.ctx.stats[stat] += 1
            log.info(
                "download of file %s to user %d %s", self.file_id, self.user_id,
                "gives way to a meeting" if meeting else "takes the path",
            )  # fmt: skip

    async def run(self) -> None:
        service = self.service
        row, sender, recipient = await service.transfer(self.file_id)
        if self.user_id not in (row.sender_id, row.recipient_id):
            raise ServiceError(ErrorCode.NOT_FOUND, "no such file")
        if row.state != "ready":
            raise ServiceError(
                ErrorCode.CONFLICT, f"the file is {row.state}, not ready"
            )
        if self.req.offset > row.size:
            raise ServiceError(ErrorCode.INVALID_ARGUMENT, "offset past the end")
        info = file_info(row, sender, recipient)
        self.stream.send(FileData(rid=self.req.rid, file=info, offset=self.req.offset))
        handle = await service.run_io(service.blobs.open_blob, row.sha256)
        try:
            await service.run_io(handle.seek, self.req.offset)
            position = self.req.offset
            while position < row.size:
                self.give_way()
                await self._acknowledged(position - WINDOW + 1)
                chunk = await service.run_io(
                    handle.read, min(READ_CHUNK, row.size - position)
                )
                if not chunk:
                    raise ServiceError(ErrorCode.INTERNAL, "the stored file is short")
                position += len(chunk)
                self.stream.send_raw(chunk, end=position >= row.size)
            if row.size == self.req.offset:
                self.stream.send_raw(b"", end=True)
        finally:
            await service.run_io(handle.close)
        await self._acknowledged(row.size)
        if self.user_id == row.recipient_id and not row.downloaded:
            await service.ctx.storage.run(_mark_downloaded, row.id)
            service.social.push(row.sender_id, FileDelivered(file_id=row.id))


def _write_and_hash(fd: int, data: bytes, digest: Any) -> None:
    BlobStore.write_all(fd, data)
    digest.update(data)


def _close(fd: int) -> None:
    os.close(fd)


def _store_received(file_id: str, received: int) -> None:
    FileTransfer.update(received=received).where(
        (FileTransfer.id == file_id) & (FileTransfer.state == "uploading")
    ).execute()


def _mark_downloaded(file_id: str) -> None:
    FileTransfer.update(downloaded=True).where(FileTransfer.id == file_id).execute()
