"""A transfer connection of the session in this process: a large download
comes on one of its own, not on the session's connection, which carries the
user's meeting.

The server runs its side of a transfer connection on the scavenger
controller while the connection's user is in a meeting on that node, and on
the media controller otherwise (``server/file_streams.py``): a download then
gives way to the meeting's media coming down the same path, and takes the
path back when the meeting ends, even when the meeting began after the
download (``docs/adaptation.md``, "Files beside a meeting"). On the
session's own connection the file and the media would share one controller,
and the file's queue would hold the media back.
"""

from __future__ import annotations

import logging

from codec.messages import AttachTransfers, Ok

from ..errors import ClientError
from ..pinning import PinStore
from ..session import Session
from ..transport import ClientProtocol

__all__ = ["TransferLink"]

log = logging.getLogger("quicmeet.transfers")

ATTACH_TIMEOUT_S = 10.0


def address_of(session: Session) -> str:
    """``host:port`` of the node the session is connected to."""
    host, port = session.host, session.port
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class TransferLink:
    """One transfer connection of ``session``; :meth:`open` it, use
    :attr:`proto`, :meth:`close` it."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._link: Session | None = None
        self.proto: ClientProtocol | None = None

    async def open(self) -> ClientProtocol | None:
        """Connect to the session's node and attach; None when the session
        has no live connection or token to attach to, or the node refuses
        (the caller then uses the session's own connection)."""
        session = self._session
        token, fingerprint = session.token, session.fingerprint
        if token is None or fingerprint is None or not session.connected:
            return None
        server = address_of(session)
        pins = PinStore(None)
        pins.check(server, fingerprint)
        link = Session(server, pins=pins, ca_file=session.ca_file, reconnect=False)
        self._link = link
        try:
            await link.connect(ATTACH_TIMEOUT_S)
            await link.call(AttachTransfers, Ok, token=token)
            self.proto = await link.wait_ready(ATTACH_TIMEOUT_S)
        except ClientError as exc:
            log.info("no transfer connection: %s", exc)
            await self.close()
            return None
        return self.proto

    async def close(self) -> None:
        link, self._link, self.proto = self._link, None, None
        if link is not None:
            await link.close()
