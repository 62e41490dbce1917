"""Errors of the desktop client's engine and of the channel to it.

Errors cross the channel as :class:`~client.engine.messages.Failure` replies
with a stable ``code``; :func:`to_failure` and :func:`from_failure` translate
at the boundary, so a view sees the same exception classes it would see in
one process (``ServerError`` with its code, ``CertificateMismatch``, ...).
"""

from __future__ import annotations

from typing import Any

from ..errors import (
    CertificateMismatch,
    ClientError,
    ConnectionFailed,
    ConnectionLost,
    NotConnected,
    ServerError,
    SessionEnded,
)
from .model import ServerIdentity

__all__ = [
    "ChannelError",
    "EngineStopped",
    "NotSignedIn",
    "RemoteError",
    "UntrustedCertificate",
    "MALFORMED",
    "TOO_LARGE",
    "UNKNOWN_COMMAND",
    "FAILED",
    "from_failure",
    "to_failure_fields",
]

MALFORMED = "malformed"
"""The frame is not a message of the channel (bad msgpack, wrong fields)."""
UNKNOWN_COMMAND = "unknown_command"
"""A well-formed request naming a command the engine does not have."""
TOO_LARGE = "too_large"
"""A frame longer than the channel's limit (it was skipped unread)."""
FAILED = "failed"
"""The command ran and raised; ``kind`` names the exception."""


class UntrustedCertificate(ClientError):
    """First connection to a server: its certificate must be confirmed by the
    user (the ``trust`` command) before anything is sent."""

    def __init__(self, identity: ServerIdentity) -> None:
        super().__init__(f"the certificate of {identity.address} is not trusted yet")
        self.identity = identity


class NotSignedIn(ClientError):
    """A command that needs a signed-in account was given without one."""


class ChannelError(ClientError):
    """The channel refused a message: ``code`` is one of the module's codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class EngineStopped(ClientError):
    """The engine process ended before it answered this command."""


class RemoteError(ClientError):
    """The engine failed with an exception the UI has no class for; the
    message names it."""


_SIMPLE: dict[str, type[ClientError]] = {
    cls.__name__: cls
    for cls in (
        ClientError,
        ConnectionFailed,
        ConnectionLost,
        NotConnected,
        NotSignedIn,
    )
}


def to_failure_fields(error: BaseException) -> tuple[str, str, dict[str, Any]]:
    """``(kind, message, details)`` that rebuild ``error`` on the other side."""
    details: dict[str, Any] = {}
    if isinstance(error, ServerError):
        details = {
            "code": int(error.code),
            "message": error.message,
            "retry_after_ms": error.retry_after_ms,
        }
    elif isinstance(error, CertificateMismatch):
        details = {
            "address": error.address,
            "pinned": error.pinned,
            "presented": error.presented,
        }
    elif isinstance(error, UntrustedCertificate):
        details = {
            "address": error.identity.address,
            "fingerprint": error.identity.fingerprint,
        }
    elif isinstance(error, SessionEnded):
        details = {"reason": error.reason}
    elif isinstance(error, ChannelError):
        details = {"code": error.code}
    elif isinstance(error, ClientError):
        details = {"client_error": True}
    return type(error).__name__, str(error), details


def from_failure(kind: str, message: str, details: dict[str, Any]) -> ClientError:
    """The exception a :class:`~client.engine.messages.Failure` stands for."""
    try:
        if kind == "ServerError":
            return ServerError(
                details["code"], details["message"], details.get("retry_after_ms")
            )
        if kind == "CertificateMismatch":
            return CertificateMismatch(
                details["address"], details["pinned"], details["presented"]
            )
        if kind == "UntrustedCertificate":
            return UntrustedCertificate(
                ServerIdentity(details["address"], details["fingerprint"])
            )
        if kind == "SessionEnded":
            return SessionEnded(details["reason"], message)
        if kind == "ChannelError":
            return ChannelError(details["code"], message)
    except (KeyError, TypeError, ValueError):
        return RemoteError(f"{kind}: {message}")
    simple = _SIMPLE.get(kind)
    if simple is not None:
        return simple(message)
    if details.get("client_error"):
        return ClientError(message)
    return RemoteError(f"{kind}: {message}")
