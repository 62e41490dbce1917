"""Sending a file: offer, proof of ownership, then the bytes the server lacks."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

from codec import ErrorCode
from codec.messages import (
    CancelFile,
    Error,
    FileOffer,
    FileStored,
    OfferFile,
    ProveFile,
    Reply,
)

from ..errors import ClientError, ConnectionLost, NotConnected, ServerError
from .files import hash_step, prefix_state, ranges_proof
from .job import Job
from .outbound import Sent, StreamLost, send_from
from .pumping import pumped_upload
from .records import DONE, Interrupted, Transfer, TransferError
from .streams import Rate

__all__ = ["upload"]

log = logging.getLogger("quicmeet.transfers")

HASH_STEP = 8 * 1024 * 1024
"""Bytes hashed between two progress reports and two looks at whether to
stop: 6-25 ms of work here (0.8-3 s per GiB, cached or not)."""
MEETING_PUMP_AT = 1024 * 1024
"""Bytes left from which an upload goes through a pump while a meeting's
media flow (the pump's connection gives way to them; the session's own
connection, which carries them, would compete): a second or two of a
5 Mbit/s uplink."""


async def upload(job: Job) -> tuple[Transfer, int]:
    """Offer the file, prove it when the server already holds it (instant
    upload), else stream it from the offset the server holds; the row as it
    ends and the content bytes sent."""
    transfer = job.transfer
    path = Path(transfer.path)
    loop = asyncio.get_running_loop()
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise TransferError(f"cannot read {path}: {exc.strerror}") from None
    if size != transfer.size:
        raise TransferError(f"{path} changed since the transfer started")
    if transfer.sha256 is None:
        transfer = await check(job, path)
    assert transfer.sha256 is not None
    try:
        offer = await job.session.call(
            OfferFile,
            FileOffer,
            to=transfer.peer,
            name=transfer.name,
            size=transfer.size,
            sha256=transfer.sha256,
        )
        transfer = await job.set(file_id=offer.file_id)
        ranges = [(r.offset, r.length) for r in offer.ranges]
        proof = await loop.run_in_executor(
            None, ranges_proof, path, offer.nonce, ranges
        )
        stored = await job.session.call(
            ProveFile, FileStored, file_id=offer.file_id, proof=proof
        )
    except (ConnectionLost, NotConnected) as exc:
        raise Interrupted(0) from exc
    if stored.state == "ready":
        done = await job.set(state=DONE, done=transfer.size, instant=stored.instant)
        job.report(done.size)
        return done, 0
    offset = offer.offset
    if offset:
        prefix = await loop.run_in_executor(None, prefix_state, path, offset)
        if prefix.hexdigest() != offer.prefix_sha256:
            log.warning("server's partial upload differs from %s; restarting", path)
            await job.session.call(CancelFile, Reply, file_id=offer.file_id)
            await job.set(file_id=None, done=0)
            raise Interrupted(0)
    return await stream_upload(job, offer.file_id, offset)


async def check(job: Job, path: Path) -> Transfer:
    """Hash the file, reporting as it goes, and keep the hash in the row. The
    transfer is listed from the start, however long a file of many GiB takes
    to hash; a pause or cancel stops the hashing, and a resume starts it anew.
    """
    loop = asyncio.get_running_loop()
    digest = hashlib.sha256()
    hashed = 0
    try:
        fh = await loop.run_in_executor(None, open, path, "rb")
        try:
            while True:
                if await job.should_stop():
                    raise Interrupted(0)
                step = await loop.run_in_executor(
                    None, hash_step, fh, digest, HASH_STEP
                )
                hashed += step
                job.report(hashed, checking=True)
                if step < HASH_STEP:
                    break
        finally:
            await loop.run_in_executor(None, fh.close)
    except OSError as exc:
        raise TransferError(f"cannot read {path}: {exc.strerror}") from None
    if hashed != job.transfer.size:
        raise TransferError(f"{path} changed since the transfer started")
    job.rate = Rate()
    return await job.set(sha256=digest.hexdigest())


async def stream_upload(job: Job, file_id: str, offset: int) -> tuple[Transfer, int]:
    """Send the file from ``offset`` on: through an upload pump process when
    at least :attr:`Transfers.pump_at` bytes are left (or
    :data:`MEETING_PUMP_AT` while a meeting's media flow), else on the
    session's own connection."""
    transfer = job.transfer
    pump_at, left = job.owner.pump_at, transfer.size - offset
    if pump_at is not None and (
        left >= pump_at or (left >= MEETING_PUMP_AT and job.owner.media_active())
    ):
        pumped = await pumped_upload(job, file_id, offset)
        if pumped is not None:
            return await finish(job, pumped)
    try:
        proto = await job.session.wait_ready(30)
    except ClientError as exc:
        raise Interrupted(0) from exc

    async def checkpoint(written: int) -> bool:
        await job.set(done=written)
        return await job.should_stop()

    try:
        sent = await send_from(
            proto, file_id, transfer.path, offset, transfer.size,
            checkpoint, job.report, lambda: job.stopping,
        )  # fmt: skip
    except StreamLost as lost:
        await job.set(done=lost.written)
        raise Interrupted(lost.moved) from lost
    return await finish(job, sent)


async def finish(job: Job, sent: Sent) -> tuple[Transfer, int]:
    """Keep what the server's last word on the stream says: the row as it
    ends and the content bytes sent."""
    transfer, reply, moved = job.transfer, sent.reply, sent.moved
    if isinstance(reply, Error):
        if reply.code == 502:  # STORAGE_FULL: keep what is there, retry later
            await job.set(done=sent.written)
        if reply.code == ErrorCode.CONFLICT:
            # The server holds more (or less) than the offer said: bytes of
            # an earlier stream of ours (a killed pump's, a lost connection's)
            # landed after it. Offer again: it says where the file stands,
            # or that it is cancelled or complete.
            raise Interrupted(moved)
        raise ServerError(reply.code, reply.message, reply.retry_after_ms)
    assert isinstance(reply, FileStored)
    job.report(reply.received)
    if reply.state == "ready":
        return await job.set(state=DONE, done=transfer.size), moved
    stopped = await job.set(done=reply.received)
    if job.stopping:
        raise Interrupted(moved)
    return stopped, moved
