"""File transfers on the client: send to a friend, download, pause, resume,
cancel, with the state kept in the local store so that a restart (or a crash)
loses nothing.

Uploads offer the file's SHA-256 first; the server's challenge is answered by
hashing a few ranges of the file, which completes the transfer at once when the
server already has the content. Otherwise the upload continues from the offset
the server holds, after checking that those bytes hash like the file's prefix.
Downloads go to ``NAME.part``, resume from its length, and are renamed into
place only after the whole file's SHA-256 matches.
"""

from __future__ import annotations

import asyncio
import builtins
import errno
import hashlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from codec import FrameDecoder, MessageError, OversizedFrame, encode_message
from codec.messages import (
    CancelFile,
    DownloadFile,
    Error,
    Event,
    FileCancelled,
    FileData,
    FileInfo,
    FileList,
    FileOffer,
    FileStored,
    ListFiles,
    OfferFile,
    ProveFile,
    Reply,
    TransferProgress,
    UploadFile,
)
from codec.ownership import ownership_proof
from codec.protocol import decode_stream_reply

from .errors import ClientError, ConnectionLost, NotConnected, ServerError
from .session import Session
from .store import LocalStore

__all__ = ["Progress", "Transfer", "TransferError", "Transfers"]

log = logging.getLogger("quicmeet.transfers")

WINDOW = 1024 * 1024
CHUNK = 64 * 1024
PROGRESS_EVERY = 128 * 1024
HASH_CHUNK = 1024 * 1024
WRITE_BATCH = 256 * 1024
BATCH_WAIT = 0.02

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
    (bytes per second), ``eta_s`` seconds left (None when unknown)."""

    transfer_id: int
    done: int
    size: int
    rate_bps: float
    eta_s: float | None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def prefix_state(path: Path, length: int) -> Any:
    """SHA-256 state over the first ``length`` bytes of ``path``."""
    digest = hashlib.sha256()
    remaining = length
    with open(path, "rb") as fh:
        while remaining:
            chunk = fh.read(min(HASH_CHUNK, remaining))
            if not chunk:
                raise TransferError(f"{path} is shorter than {length} bytes")
            digest.update(chunk)
            remaining -= len(chunk)
    return digest


def ranges_proof(path: Path, nonce: bytes, ranges: list[tuple[int, int]]) -> bytes:
    """Answer the server's challenge from the file at ``path``."""
    pieces = []
    with open(path, "rb") as fh:
        for offset, length in ranges:
            fh.seek(offset)
            pieces.append(fh.read(length))
    return ownership_proof(nonce, pieces)


def unique_path(directory: Path, name: str) -> Path:
    """``directory/name``, or ``name (1)``, ``name (2)``… if taken (with .part)."""
    stem, dot, ext = name.rpartition(".")
    if not stem:
        stem, dot, ext = name, "", ""
    candidate = directory / name
    n = 1
    while candidate.exists() or Path(str(candidate) + ".part").exists():
        candidate = directory / f"{stem} ({n}){dot}{ext}"
        n += 1
    return candidate


class _Rate:
    """Bytes per second over the last few seconds."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque()

    def update(self, done: int) -> float:
        now = time.monotonic()
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > 3.0:
            self._samples.popleft()
        first_t, first_done = self._samples[0]
        return (done - first_done) / (now - first_t) if now > first_t else 0.0


class _UploadListener:
    """The server's side of an upload stream: progress frames, then one reply."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.written = 0
        self.final: asyncio.Future[Reply] = loop.create_future()
        self.moved = asyncio.Event()
        self._decoder = FrameDecoder()

    def data_received(self, data: bytes, end: bool) -> None:
        for frame in self._decoder.feed(data):
            if isinstance(frame, OversizedFrame):
                continue
            try:
                message = decode_stream_reply(frame)
            except MessageError as exc:
                self.broken(ConnectionLost(f"bad frame from the server: {exc}"))
                return
            if isinstance(message, TransferProgress):
                self.written = max(self.written, message.written)
            elif not self.final.done():
                self.final.set_result(message)
            self.moved.set()
        if end and not self.final.done():
            self.broken(ConnectionLost("the server ended the upload without a reply"))

    def broken(self, error: ClientError) -> None:
        if not self.final.done():
            self.final.set_exception(error)
        self.moved.set()


class _DownloadListener:
    """The server's side of a download stream: a header frame, then raw bytes."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.header: asyncio.Future[Reply] = loop.create_future()
        self.chunks: asyncio.Queue[bytes | ClientError | None] = asyncio.Queue()
        self.arrived = asyncio.Event()
        self._head = bytearray()

    def data_received(self, data: bytes, end: bool) -> None:
        if not self.header.done():
            self._head += data
            if len(self._head) < 4:
                return
            length = int.from_bytes(self._head[:4], "big")
            if len(self._head) < 4 + length:
                return
            try:
                message = decode_stream_reply(bytes(self._head[4 : 4 + length]))
            except MessageError as exc:
                self.broken(ConnectionLost(f"bad header from the server: {exc}"))
                return
            data = bytes(self._head[4 + length :])
            self._head = bytearray()
            self.header.set_result(message)  # type: ignore[arg-type]
        if data:
            self.chunks.put_nowait(data)
        if end:
            self.chunks.put_nowait(None)
        self.arrived.set()

    def broken(self, error: ClientError) -> None:
        if not self.header.done():
            self.header.set_exception(error)
        self.chunks.put_nowait(error)
        self.arrived.set()

    async def wait_more(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for more to arrive."""
        self.arrived.clear()
        if self.chunks.empty():
            try:
                await asyncio.wait_for(self.arrived.wait(), timeout)
            except TimeoutError:
                pass


class Transfers:
    """Uploads and downloads of one user, persisted in the local store.

    ``downloads`` is where received files go. ``max_parallel`` bounds transfers
    running at once. With ``auto_resume`` interrupted transfers restart after
    every login and reconnect.
    """

    def __init__(
        self,
        session: Session,
        store: LocalStore,
        downloads: Path,
        *,
        max_parallel: int = 3,
        auto_resume: bool = False,
    ) -> None:
        self.session = session
        self.store = store
        self.downloads = downloads
        self.auto_resume = auto_resume
        self.on_progress: Callable[[Progress], None] = lambda progress: None
        self.on_change: Callable[[Transfer], None] = lambda transfer: None
        self._slots = asyncio.Semaphore(max_parallel)
        self._running: dict[int, asyncio.Task[Transfer]] = {}
        self._stop: dict[int, str] = {}
        session.add_login_hook(self._after_login)
        session.add_event_hook(self._on_event)

    # -- local rows (store thread) ----------------------------------------------

    def _row(self, transfer_id: int) -> Transfer:
        row = self.store.Transfer.get_or_none(self.store.Transfer.id == transfer_id)
        if row is None:
            raise TransferError(f"no transfer {transfer_id}")
        return _transfer(row)

    def _update(self, transfer_id: int, **fields: Any) -> Transfer:
        fields["updated_ms"] = int(time.time() * 1000)
        T = self.store.Transfer
        T.update(**fields).where(T.id == transfer_id).execute()
        return self._row(transfer_id)

    def _create(self, **fields: Any) -> Transfer:
        now = int(time.time() * 1000)
        row = self.store.Transfer.create(created_ms=now, updated_ms=now, **fields)
        return _transfer(row)

    def _all(self) -> builtins.list[Transfer]:
        T = self.store.Transfer
        return [_transfer(row) for row in T.select().order_by(T.id)]

    async def _set(self, transfer_id: int, **fields: Any) -> Transfer:
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
        """Files we sent or received that the server still holds."""
        return (await self.session.call(ListFiles, FileList)).files

    async def send(self, peer: str, path: Path) -> Transfer:
        """Send the file at ``path`` to the friend ``peer`` and wait until the
        server holds it (or the transfer is paused)."""
        path = path.resolve()
        if not path.is_file():
            raise TransferError(f"{path} is not a file")
        loop = asyncio.get_running_loop()
        sha256 = await loop.run_in_executor(None, file_sha256, path)
        stat = path.stat()
        transfer = await self.store.run(
            lambda: self._create(
                direction="up",
                peer=peer.lower(),
                name=path.name,
                path=str(path),
                size=stat.st_size,
                sha256=sha256,
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
        self._stop[transfer_id] = PAUSED
        task = self._running.get(transfer_id)
        transfer = await self._set(transfer_id, state=PAUSED)
        if task is not None:
            await asyncio.wait([task])
        return transfer

    async def resume(self, transfer_id: int) -> Transfer:
        """Continue a paused, failed or interrupted transfer and wait for it."""
        transfer = await self.get(transfer_id)
        if transfer.state in (DONE, CANCELLED):
            return transfer
        await self._set(transfer_id, state=ACTIVE, error="")
        return await self._start(transfer_id)

    async def cancel(self, transfer_id: int) -> Transfer:
        """Cancel a transfer here and on the server."""
        self._stop[transfer_id] = CANCELLED
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
        return await self._set(transfer_id, state=CANCELLED)

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
        self._stop.pop(transfer_id, None)
        async with self._slots:
            wire = 0
            while True:
                transfer = await self.get(transfer_id)
                if transfer.state != ACTIVE:
                    return transfer
                try:
                    if transfer.direction == "up":
                        transfer, moved = await self._upload(transfer)
                    else:
                        transfer, moved = await self._download(transfer)
                    return replace(transfer, wire_bytes=wire + moved)
                except _Interrupted as exc:
                    wire += exc.moved
                    stop = self._stop.pop(transfer_id, None)
                    if stop is not None:
                        return replace(await self.get(transfer_id), wire_bytes=wire)
                    try:
                        await self.session.wait_ready(60)
                    except ClientError as lost:
                        await self._set(transfer_id, error=str(lost))
                        raise
                except (TransferError, ServerError) as exc:
                    await self._set(transfer_id, state=FAILED, error=str(exc))
                    raise

    def _report(self, transfer: Transfer, done: int, rate: _Rate) -> None:
        bps = rate.update(done)
        left = transfer.size - done
        eta = left / bps if bps > 0 else None
        self.on_progress(Progress(transfer.id, done, transfer.size, bps, eta))

    async def _should_stop(self, transfer: Transfer) -> bool:
        if transfer.id in self._stop:
            return True
        state = (await self.get(transfer.id)).state
        if state != ACTIVE:
            self._stop[transfer.id] = state
            return True
        return False

    async def _upload(self, transfer: Transfer) -> tuple[Transfer, int]:
        path = Path(transfer.path)
        loop = asyncio.get_running_loop()
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise TransferError(f"cannot read {path}: {exc.strerror}") from None
        if size != transfer.size:
            raise TransferError(f"{path} changed since the transfer started")
        assert transfer.sha256 is not None
        try:
            offer = await self.session.call(
                OfferFile,
                FileOffer,
                to=transfer.peer,
                name=transfer.name,
                size=transfer.size,
                sha256=transfer.sha256,
            )
            transfer = await self._set(transfer.id, file_id=offer.file_id)
            ranges = [(r.offset, r.length) for r in offer.ranges]
            proof = await loop.run_in_executor(
                None, ranges_proof, path, offer.nonce, ranges
            )
            stored = await self.session.call(
                ProveFile, FileStored, file_id=offer.file_id, proof=proof
            )
        except (ConnectionLost, NotConnected) as exc:
            raise _Interrupted(0) from exc
        if stored.state == "ready":
            done = await self._set(
                transfer.id, state=DONE, done=transfer.size, instant=stored.instant
            )
            self._report(done, done.size, _Rate())
            return done, 0
        offset = offer.offset
        if offset:
            prefix = await loop.run_in_executor(None, prefix_state, path, offset)
            if prefix.hexdigest() != offer.prefix_sha256:
                log.warning("server's partial upload differs from %s; restarting", path)
                await self.session.call(CancelFile, Reply, file_id=offer.file_id)
                await self._set(transfer.id, file_id=None, done=0)
                raise _Interrupted(0)
        return await self._stream_upload(transfer, offer.file_id, offset)

    async def _stream_upload(
        self, transfer: Transfer, file_id: str, offset: int
    ) -> tuple[Transfer, int]:
        loop = asyncio.get_running_loop()
        try:
            proto = await self.session.wait_ready(30)
            listener = _UploadListener()
            request = UploadFile(rid=proto.next_rid(), file_id=file_id, offset=offset)
            stream_id = proto.open_stream(listener, encode_message(request))
        except ClientError as exc:
            raise _Interrupted(0) from exc
        listener.written = offset
        rate = _Rate()
        moved = 0
        handle = await loop.run_in_executor(None, open, transfer.path, "rb")
        try:
            await loop.run_in_executor(None, handle.seek, offset)
            position = offset
            next_check = position + WINDOW
            while position < transfer.size:
                if transfer.id in self._stop:
                    break
                if position >= next_check:
                    next_check = position + WINDOW
                    await self._set(transfer.id, done=listener.written)
                    if await self._should_stop(transfer):
                        break
                while (
                    position - listener.written >= WINDOW and not listener.final.done()
                ):
                    listener.moved.clear()
                    await listener.moved.wait()
                    self._report(transfer, listener.written, rate)
                if listener.final.done():
                    break
                chunk = await loop.run_in_executor(
                    None, handle.read, min(CHUNK, transfer.size - position)
                )
                if not chunk:
                    raise TransferError(f"{transfer.path} is shorter than before")
                proto.send_stream(stream_id, chunk)
                position += len(chunk)
                moved += len(chunk)
            if not listener.final.done():
                proto.send_stream(stream_id, b"", end=True)
            reply = await listener.final
        except ClientError as exc:
            if isinstance(exc, (ConnectionLost, NotConnected)):
                await self._set(transfer.id, done=listener.written)
                raise _Interrupted(moved) from exc
            raise
        finally:
            await loop.run_in_executor(None, handle.close)
            proto.close_stream(stream_id)
        if isinstance(reply, Error):
            if reply.code == 502:  # STORAGE_FULL: keep what is there, retry later
                await self._set(transfer.id, done=listener.written)
            raise ServerError(reply.code, reply.message, reply.retry_after_ms)
        assert isinstance(reply, FileStored)
        self._report(transfer, reply.received, rate)
        if reply.state == "ready":
            return await self._set(transfer.id, state=DONE, done=transfer.size), moved
        stopped = await self._set(transfer.id, done=reply.received)
        if transfer.id in self._stop:
            raise _Interrupted(moved)
        return stopped, moved

    async def _download(self, transfer: Transfer) -> tuple[Transfer, int]:
        loop = asyncio.get_running_loop()
        part = Path(transfer.path + ".part")
        part.parent.mkdir(parents=True, exist_ok=True)
        offset = part.stat().st_size if part.exists() else 0
        if offset > transfer.size:
            part.unlink()
            offset = 0
        digest = (
            await loop.run_in_executor(None, prefix_state, part, offset)
            if offset
            else hashlib.sha256()
        )
        assert transfer.file_id is not None
        try:
            proto = await self.session.wait_ready(30)
            listener = _DownloadListener()
            request = DownloadFile(
                rid=proto.next_rid(), file_id=transfer.file_id, offset=offset
            )
            stream_id = proto.open_stream(listener, encode_message(request))
            header = await listener.header
        except (ConnectionLost, NotConnected) as exc:
            raise _Interrupted(0) from exc
        if isinstance(header, Error):
            proto.close_stream(stream_id)
            raise ServerError(header.code, header.message, header.retry_after_ms)
        assert isinstance(header, FileData)
        rate = _Rate()
        written = offset
        reported = offset
        moved = 0
        fd = await loop.run_in_executor(
            None, lambda: os.open(part, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        )
        next_check = written + WINDOW
        try:
            while written < transfer.size:
                if transfer.id in self._stop:
                    break
                if written >= next_check:
                    next_check = written + WINDOW
                    await self._set(transfer.id, done=written)
                    if await self._should_stop(transfer):
                        break
                item = await listener.chunks.get()
                if isinstance(item, ClientError):
                    raise item
                if item is None:
                    raise ConnectionLost("the download stream ended early")
                # Packets arrive about 1.2 kB at a time: write them in batches.
                batch = [item]
                size = len(item)
                deadline = loop.time() + BATCH_WAIT
                while size < WRITE_BATCH and written + size < transfer.size:
                    if listener.chunks.empty():
                        remaining = deadline - loop.time()
                        if remaining <= 0:
                            break
                        await listener.wait_more(remaining)
                        continue
                    more = listener.chunks.get_nowait()
                    if not isinstance(more, bytes):
                        listener.chunks.put_nowait(more)  # handled next round
                        break
                    batch.append(more)
                    size += len(more)
                if len(batch) > 1:
                    item = b"".join(batch)
                try:
                    await loop.run_in_executor(None, _append, fd, item, digest)
                except OSError as exc:
                    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                        raise TransferError(
                            "the disk is full; free some space and resume"
                        ) from None
                    raise
                written += len(item)
                moved += len(item)
                if written - reported >= PROGRESS_EVERY or written >= transfer.size:
                    reported = written
                    proto.send_stream(
                        stream_id, encode_message(TransferProgress(written=written))
                    )
                    self._report(transfer, written, rate)
        except (ConnectionLost, NotConnected) as exc:
            await self._set(transfer.id, done=written)
            raise _Interrupted(moved) from exc
        except TransferError:
            await self._set(transfer.id, done=written)
            raise
        finally:
            await loop.run_in_executor(None, os.close, fd)
        if written < transfer.size:
            proto.close_stream(stream_id, error_code=0)
            stopped = await self._set(transfer.id, done=written)
            if transfer.id in self._stop:
                raise _Interrupted(moved)
            return stopped, moved
        proto.send_stream(stream_id, b"", end=True)
        proto.close_stream(stream_id)
        if digest.hexdigest() != transfer.sha256:
            part.unlink(missing_ok=True)
            await self._set(transfer.id, done=0)
            raise TransferError(
                "the download does not match its SHA-256; it was removed"
            )
        await loop.run_in_executor(None, os.replace, part, transfer.path)
        return await self._set(transfer.id, state=DONE, done=transfer.size), moved

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
                self._stop[transfer.id] = CANCELLED
                task = self._running.get(transfer.id)
                if task is not None:
                    task.cancel()
                await self._set(
                    transfer.id, state=CANCELLED, error="cancelled by the other side"
                )


class _Interrupted(Exception):
    """The transfer stopped early (connection lost, paused); ``moved`` bytes went
    over the network before that."""

    def __init__(self, moved: int) -> None:
        super().__init__("interrupted")
        self.moved = moved


def _append(fd: int, data: bytes, digest: Any) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    digest.update(data)


def _transfer(row: Any) -> Transfer:
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
