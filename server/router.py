"""Routing requests to the services, and the one place their failures become
``Error`` replies.

Every request on the control stream and every transfer stream's request frame
passes here: the router checks that the server takes work and that the
connection is logged in where that is needed, runs the service's handler, and
turns a :class:`ServiceError` into its ``Error`` reply and anything else into a
logged ``INTERNAL`` one. Nothing a handler raises reaches the connection.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from codec import ErrorCode
from codec.messages import Error, Reply, Request, StreamRequest

from .errors import ServiceError

if TYPE_CHECKING:
    from .connection import ClientConnection
    from .streams import StreamHandler, StreamSink

__all__ = ["Router", "error_reply"]

log = logging.getLogger("quicmeet.server")

Handler = Callable[["ClientConnection", Any], Awaitable[Reply]]
StreamOpener = Callable[["ClientConnection", Any, "StreamHandler"], "StreamSink"]
R = TypeVar("R", bound=Reply)


def error_reply(
    rid: int | None,
    code: ErrorCode | int,
    message: str,
    retry_after_ms: int | None = None,
) -> Error:
    """The ``Error`` reply for request ``rid``."""
    return Error(
        rid=rid, code=int(code), message=message, retry_after_ms=retry_after_ms
    )


class Router:
    """Which handler serves which request type, and how its failures read.

    ``stats`` counts internal errors; ``closing`` says whether the server has
    stopped taking work.
    """

    def __init__(self, stats: Counter[str], closing: Callable[[], bool]) -> None:
        self._stats = stats
        self._closing = closing
        self._handlers: dict[type[Request], tuple[Handler, bool]] = {}
        self._pipelined: set[type[Request]] = set()
        self._stream_openers: dict[type[StreamRequest], StreamOpener] = {}
        self._transfer_streams: set[type[StreamRequest]] = set()
        """Streams a transfer connection may open (it may send no request)."""

    def handle(
        self,
        request_type: type[Request],
        handler: Handler,
        *,
        public: bool = False,
        pipelined: bool = False,
    ) -> None:
        """Route ``request_type`` to ``handler``; ``public`` ones need no login.

        A connection handles its requests one after another, except ``pipelined``
        ones, so a client can have many of those in flight: their handler is a
        plain function that does its ordering-sensitive work at once (in the
        order the requests arrived) and returns an awaitable of the reply.
        """
        self._handlers[request_type] = (handler, public)
        if pipelined:
            self._pipelined.add(request_type)

    def handle_stream(
        self,
        request_type: type[StreamRequest],
        opener: StreamOpener,
        *,
        transfer: bool = False,
    ) -> None:
        """Route the first frame of new streams of ``request_type`` to ``opener``;
        ``transfer`` ones may also open on a transfer connection."""
        self._stream_openers[request_type] = opener
        if transfer:
            self._transfer_streams.add(request_type)

    def is_pipelined(self, request: Request) -> bool:
        return type(request) in self._pipelined

    def _admit(self, conn: ClientConnection, request: Request) -> Handler | Error:
        entry = self._handlers.get(type(request))
        if entry is None:
            return error_reply(request.rid, ErrorCode.UNEXPECTED_MESSAGE, "not handled")
        handler, public = entry
        if self._closing():
            return error_reply(
                request.rid, ErrorCode.SHUTTING_DOWN, "server is stopping"
            )
        if not public and conn.account is None:
            return error_reply(request.rid, ErrorCode.NOT_AUTHENTICATED, "log in first")
        if conn.account is not None and conn.account.transfer_only:
            return error_reply(
                request.rid,
                ErrorCode.UNEXPECTED_MESSAGE,
                "a transfer connection carries file transfers only",
            )
        return handler

    def start(
        self, conn: ClientConnection, request: Request
    ) -> Reply | Awaitable[Reply]:
        """Run the synchronous part of a pipelined request's handler; return its
        reply at once (on error) or an awaitable of it (which never raises)."""
        handler = self._admit(conn, request)
        if isinstance(handler, Error):
            return handler
        try:
            pending = handler(conn, request)
        except Exception as exc:
            return self.translate(request.rid, type(request).__name__, exc)
        return self.settle(request.rid, type(request).__name__, pending)

    async def dispatch(self, conn: ClientConnection, request: Request) -> Reply:
        """Run the handler of ``request`` and return its one reply (never raises)."""
        handler = self._admit(conn, request)
        if isinstance(handler, Error):
            return handler
        return await self.settle(
            request.rid, type(request).__name__, handler(conn, request)
        )

    def open_stream(
        self, conn: ClientConnection, request: StreamRequest, stream: StreamHandler
    ) -> StreamSink:
        """Find the service for a new transfer stream; raises ServiceError."""
        opener = self._stream_openers.get(type(request))
        if opener is None:
            raise ServiceError(ErrorCode.UNEXPECTED_MESSAGE, "not handled")
        if self._closing():
            raise ServiceError(ErrorCode.SHUTTING_DOWN, "server is stopping")
        if conn.account is None:
            raise ServiceError(ErrorCode.NOT_AUTHENTICATED, "log in first")
        if conn.account.transfer_only and type(request) not in self._transfer_streams:
            raise ServiceError(
                ErrorCode.UNEXPECTED_MESSAGE,
                "a transfer connection carries file transfers only",
            )
        return opener(conn, request, stream)

    async def settle(
        self, rid: int | None, what: str, pending: Awaitable[R | None]
    ) -> R | Error | None:
        """Await the reply of request ``rid`` (named ``what`` in the log); its
        failure becomes the ``Error`` reply."""
        try:
            return await pending
        except Exception as exc:
            return self.translate(rid, what, exc)

    def translate(self, rid: int | None, what: str, exc: Exception) -> Error:
        """The ``Error`` reply for a handler's failure (logged when a bug)."""
        if isinstance(exc, ServiceError):
            return error_reply(rid, exc.code, exc.message, exc.retry_after_ms)
        log.error("%s failed", what, exc_info=exc)
        self._stats["internal_errors"] += 1
        return error_reply(rid, ErrorCode.INTERNAL, "internal server error")
