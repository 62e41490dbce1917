"""The client's error tree. Every failure a caller of :class:`Session` sees is one of
these; third-party exceptions (aioquic, OS errors) are translated at the boundary."""

from __future__ import annotations

from codec.errors import ErrorCode

__all__ = [
    "CertificateMismatch",
    "ClientError",
    "ConnectionFailed",
    "ConnectionLost",
    "NotConnected",
    "ServerError",
    "SessionEnded",
]


class ClientError(Exception):
    """Base of every error the client core raises."""


class ServerError(ClientError):
    """The server answered a request with ``Error``."""

    def __init__(
        self, code: int, message: str, retry_after_ms: int | None = None
    ) -> None:
        try:
            self.code: ErrorCode | int = ErrorCode(code)
        except ValueError:
            self.code = code
        self.message = message
        self.retry_after_ms = retry_after_ms
        name = self.code.name if isinstance(self.code, ErrorCode) else str(code)
        super().__init__(f"{message} ({name})")


class ConnectionFailed(ClientError):
    """The server could not be reached or refused the handshake."""


class ConnectionLost(ClientError):
    """The connection broke while a request was in flight; its outcome is unknown."""


class NotConnected(ClientError):
    """There is no connection (not connected yet, or reconnecting gave up)."""


class SessionEnded(ClientError):
    """The server ended this session (signed in elsewhere, password changed)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class CertificateMismatch(ClientError):
    """The server's certificate is not the one pinned for this address."""

    def __init__(self, address: str, pinned: str, presented: str) -> None:
        super().__init__(
            f"the certificate of {address} has CHANGED: pinned sha256:{pinned}, "
            f"presented sha256:{presented}. This may be an attack; if the server "
            "was reinstalled on purpose, remove its line from known_hosts"
        )
        self.address = address
        self.pinned = pinned
        self.presented = presented
