"""The codec's error tree and the stable numeric error codes of the wire.

Two kinds of failure, as h11 separates them: ``LocalProtocolError`` means *we*
tried to put something on the wire that the protocol does not allow (a caller bug),
``RemoteProtocolError`` means the *peer* sent bytes that break the protocol. Both
carry an :class:`ErrorCode` so an adapter can turn them into an ``Error`` reply
without guessing.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "CloseCode",
    "CodecError",
    "ErrorCode",
    "LocalProtocolError",
    "RemoteProtocolError",
]


class ErrorCode(IntEnum):
    """Stable error codes carried by ``Error`` replies. Never renumber one.

    1xx: the frame or message itself is bad. 2xx: authentication and accounts.
    3xx: what was asked for (not found, forbidden, invalid argument).
    4xx: limits. 5xx: the server's own trouble.
    """

    BAD_FRAME = 100
    """The frame is not a msgpack map (or is truncated)."""
    FRAME_TOO_LARGE = 101
    """The frame's length prefix is over the 64 KiB limit; its body was skipped."""
    INVALID_MESSAGE = 102
    """The frame decoded but failed validation (wrong field type, missing field)."""
    UNKNOWN_TYPE = 103
    """The message's type tag names no message of this protocol version."""
    UNEXPECTED_MESSAGE = 104
    """A well-formed message that the receiver does not accept (a reply sent as
    a request, a stream request on the control stream)."""

    NOT_AUTHENTICATED = 200
    """The request needs a logged-in session."""
    ALREADY_AUTHENTICATED = 201
    """Login, register or resume on a connection that is already logged in."""
    INVALID_CREDENTIALS = 202
    """Unknown user or wrong password (deliberately not told apart)."""
    LOGIN_THROTTLED = 203
    """Too many failed logins for this account or address; see ``retry_after_ms``."""
    USERNAME_TAKEN = 204
    """Another account already has this name (compared without regard to case)."""
    INVALID_USERNAME = 205
    """3 to 32 characters of ``a-z 0-9 _ . -`` are accepted."""
    WEAK_PASSWORD = 206
    """Passwords need at least 8 characters."""
    INVALID_TOKEN = 207
    """The session token is unknown, revoked or expired: log in with a password."""

    NOT_FOUND = 300
    """The user, room, file or message named does not exist (or is not visible)."""
    FORBIDDEN = 301
    """The caller may not do this to that object."""
    INVALID_ARGUMENT = 302
    """A field has a value the request does not accept; the message says which."""
    CONFLICT = 303
    """The request contradicts the current state (already friends, offset mismatch)."""
    ROOM_ELSEWHERE = 304
    """The room lives on another node of the cluster; the ``RoomElsewhere`` event
    sent just before this reply says where: move the session there and join."""

    RATE_LIMITED = 400
    """Too many requests; see ``retry_after_ms``."""
    TOO_LARGE = 401
    """A payload (avatar, message, file) is over its size limit."""
    QUOTA_EXCEEDED = 402
    """A per-user quota (storage, rooms) is used up."""
    BUSY = 403
    """The server is at capacity for this work; retry after ``retry_after_ms``."""
    ROOM_FULL = 404
    """The room already holds as many members as it may."""

    INTERNAL = 500
    """A bug on the server; it was logged there. The connection survives."""
    SHUTTING_DOWN = 501
    """The server is stopping and takes no new work."""
    STORAGE_FULL = 502
    """The server's disk is full; nothing was lost, retry later."""


class CodecError(Exception):
    """Base of every error raised by :mod:`codec`."""

    code: ErrorCode = ErrorCode.INVALID_MESSAGE

    def __init__(self, message: str, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)


class LocalProtocolError(CodecError):
    """We tried to send something the protocol forbids (a caller bug)."""


class RemoteProtocolError(CodecError):
    """The peer sent bytes that break the protocol."""


class CloseCode(IntEnum):
    """QUIC application error codes with which either side closes a connection."""

    NORMAL = 0x0
    """Orderly close (logout and quit, client exit)."""
    KICKED = 0x10
    """The session was ended by a newer login or a password change."""
    SHUTDOWN = 0x11
    """The server is stopping."""
    PROTOCOL_VIOLATION = 0x12
    """The peer kept sending frames that break the protocol."""
    ABUSE = 0x13
    """The peer kept exceeding request limits after being told."""
