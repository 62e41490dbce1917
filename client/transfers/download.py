"""Receiving a file: resumed from the partial file's length, written in
batches, verified before it takes its name."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
from pathlib import Path
from typing import Any

from codec import encode_message
from codec.messages import DownloadFile, Error, FileData, TransferProgress

from ..errors import ClientError, ConnectionLost, NotConnected, ServerError
from .files import append, prefix_state
from .job import WINDOW, Job
from .link import TransferLink
from .records import DONE, Interrupted, Transfer, TransferError
from .streams import DownloadListener

__all__ = ["download"]

PROGRESS_EVERY = 128 * 1024
"""Bytes between progress reports to the server (and to the listeners)."""
WRITE_BATCH = 256 * 1024
BATCH_WAIT = 0.02
"""A write waits this long (seconds) for more packets to make a batch."""


async def download(job: Job) -> tuple[Transfer, int]:
    """Fetch the file into ``NAME.part`` from its length on, and rename it
    into place once its SHA-256 matches; the row as it ends and the content
    bytes received. With at least :attr:`Transfers.link_at` bytes left the
    file comes on a transfer connection of its own (:mod:`.link`), else (or
    when none can be attached) on the session's connection."""
    transfer = job.transfer
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
    link = None
    link_at = job.owner.link_at
    if link_at is not None and transfer.size - offset >= link_at:
        link = TransferLink(job.session)
        if await link.open() is None:
            link = None
    try:
        return await _receive(job, part, offset, digest, link)
    finally:
        if link is not None:
            await link.close()


async def _receive(
    job: Job, part: Path, offset: int, digest: Any, link: TransferLink | None
) -> tuple[Transfer, int]:
    transfer = job.transfer
    assert transfer.file_id is not None
    loop = asyncio.get_running_loop()
    try:
        proto = link.proto if link is not None else None
        if proto is None:
            proto = await job.session.wait_ready(30)
        listener = DownloadListener()
        request = DownloadFile(
            rid=proto.next_rid(), file_id=transfer.file_id, offset=offset
        )
        stream_id = proto.open_stream(listener, encode_message(request))
        header = await listener.header
    except (ConnectionLost, NotConnected) as exc:
        raise Interrupted(0) from exc
    if isinstance(header, Error):
        proto.close_stream(stream_id)
        raise ServerError(header.code, header.message, header.retry_after_ms)
    assert isinstance(header, FileData)
    written = offset
    reported = offset
    moved = 0
    fd = await loop.run_in_executor(
        None, lambda: os.open(part, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    )
    next_check = written + WINDOW
    try:
        while written < transfer.size:
            if job.stopping:
                break
            if written >= next_check:
                next_check = written + WINDOW
                await job.set(done=written)
                if await job.should_stop():
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
                await loop.run_in_executor(None, append, fd, item, digest)
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
                job.report(written)
    except (ConnectionLost, NotConnected) as exc:
        await job.set(done=written)
        raise Interrupted(moved) from exc
    except TransferError:
        await job.set(done=written)
        raise
    finally:
        await loop.run_in_executor(None, os.close, fd)
    if written < transfer.size:
        proto.close_stream(stream_id, error_code=0)
        stopped = await job.set(done=written)
        if job.stopping:
            raise Interrupted(moved)
        return stopped, moved
    proto.send_stream(stream_id, b"", end=True)
    proto.close_stream(stream_id)
    if digest.hexdigest() != transfer.sha256:
        part.unlink(missing_ok=True)
        await job.set(done=0)
        raise TransferError("the download does not match its SHA-256; it was removed")
    await loop.run_in_executor(None, os.replace, part, transfer.path)
    return await job.set(state=DONE, done=transfer.size), moved
