"""The engine's side of an upload pump (:mod:`client.transfers.pump`): start
it, follow its progress into the transfer's row, ask it to stop on a pause,
kill it on a cancel, and turn its last line into the stream's outcome."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

import msgspec

from codec.messages import Error, FileStored

from .job import Job
from .link import address_of
from .outbound import Sent
from .records import Interrupted

__all__ = ["Order", "pumped_upload"]

log = logging.getLogger("quicmeet.transfers")

POLL_S = 0.25
"""How often the engine looks whether a pause was asked while the pump is
quiet: a pause reaches the pump within this."""


class Order(msgspec.Struct, kw_only=True):
    """What a pump is to send: ``path`` from ``offset`` to ``size`` as the file
    ``file_id``, to the server node ``server`` (``host:port``) whose
    certificate has the SHA-256 ``fingerprint`` (or chains to ``ca_file``),
    in the session of ``token`` (hex)."""

    server: str
    fingerprint: str
    ca_file: str | None = None
    token: str
    file_id: str
    path: str
    offset: int
    size: int
    yielding: bool = False
    """Whether the pump's connection starts on the controller that gives way
    to a meeting's media (``yield`` and ``full`` lines change it later)."""


async def pumped_upload(job: Job, file_id: str, offset: int) -> Sent | None:
    """Send the file from ``offset`` through a pump process: the stream's
    outcome, or None when the pump could not attach to the session (the
    caller then sends on the session's own connection). Raises
    :class:`Interrupted` when the pump's stream or the pump itself is lost."""
    session, transfer = job.session, job.transfer
    if session.token is None or session.fingerprint is None or not session.connected:
        return None
    order = Order(
        server=address_of(session),
        fingerprint=session.fingerprint,
        ca_file=None if session.ca_file is None else str(session.ca_file),
        token=session.token.hex(),
        file_id=file_id,
        path=transfer.path,
        offset=offset,
        size=transfer.size,
        yielding=job.owner.media_active(),
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "client.transfers.pump",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    job.owner.pumps[transfer.id] = proc.pid
    written, attached, stop_sent = offset, False, False
    yielding = order.yielding
    try:
        proc.stdin.write(msgspec.json.encode(order) + b"\n")
        while True:
            if job.stopping and not stop_sent:
                stop_sent = _tell(proc, b"stop\n")
            if job.owner.media_active() != yielding:
                # A meeting began or ended while the file moves.
                yielding = not yielding
                _tell(proc, b"yield\n" if yielding else b"full\n")
            try:
                raw = await asyncio.wait_for(proc.stdout.readline(), POLL_S)
            except TimeoutError:
                continue
            if not raw:
                log.warning("upload pump of transfer %d ended early", transfer.id)
                await job.set(done=written)
                raise Interrupted(0)
            line: dict[str, Any] = json.loads(raw)
            if "attached" in line:
                attached = True
            elif "yielding" in line:
                way = "gives way to a meeting" if line["yielding"] else "takes the path"
                log.info("upload pump of transfer %d %s", transfer.id, way)
            elif "lost" in line:
                if not attached:
                    log.info("upload pump not attached: %s", line["lost"])
                    return None
                await job.set(done=line["written"])
                raise Interrupted(line["moved"])
            elif "error" in line:
                reply = Error(
                    rid=0,
                    code=line["error"],
                    message=line["message"],
                    retry_after_ms=line["retry_after_ms"],
                )
                return Sent(reply, line["moved"], line["written"])
            elif "stored" in line:
                stored = FileStored(
                    rid=0, file_id=file_id, received=line["received"],
                    state=line["stored"],
                )  # fmt: skip
                return Sent(stored, line["moved"], line["received"])
            else:
                written = line["written"]
                job.report(written)
                await job.set(done=written)
                if not stop_sent and await job.should_stop():
                    stop_sent = _tell(proc, b"stop\n")
    finally:
        # End of file on its stdin ends a pump that is still sending (a
        # cancel); one that answered is on its way out already.
        job.owner.pumps.pop(transfer.id, None)
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 2.0)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def _tell(proc: asyncio.subprocess.Process, line: bytes) -> bool:
    """Write ``line`` to the pump; whether it could be written."""
    assert proc.stdin is not None
    try:
        proc.stdin.write(line)
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True
