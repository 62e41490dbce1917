"""Errors the server's services raise; each becomes one ``Error`` reply."""

from __future__ import annotations

from codec.errors import ErrorCode

__all__ = ["ServiceError"]


class ServiceError(Exception):
    """A request failed for a reason the client should be told.

    ``code`` is the wire error code; ``message`` is shown to people and must never
    contain a password, token or key; ``retry_after_ms`` goes with throttling.
    """

    def __init__(
        self, code: ErrorCode, message: str, retry_after_ms: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_ms = retry_after_ms
