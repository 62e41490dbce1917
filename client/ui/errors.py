"""The words the views use for any error (the error classes live in
:mod:`client.engine.errors`, shared by both processes)."""

from __future__ import annotations

from codec.errors import ErrorCode

from ..engine.errors import EngineStopped, NotSignedIn, UntrustedCertificate
from ..errors import (
    CertificateMismatch,
    ClientError,
    ConnectionFailed,
    NotConnected,
    ServerError,
    SessionEnded,
)

__all__ = ["NotSignedIn", "UntrustedCertificate", "describe"]


_FRIENDLY: dict[int, str] = {
    ErrorCode.INVALID_CREDENTIALS: "Wrong username or password.",
    ErrorCode.USERNAME_TAKEN: "That username is taken.",
    ErrorCode.INVALID_USERNAME: (
        "Usernames are 3 to 32 characters: letters, digits, _ . and -."
    ),
    ErrorCode.WEAK_PASSWORD: "Passwords need at least 8 characters.",
    ErrorCode.INVALID_TOKEN: "The saved sign-in expired; enter your password.",
}


def describe(error: BaseException) -> str:
    """A sentence for people about ``error``."""
    if isinstance(error, ServerError):
        text = _FRIENDLY.get(int(error.code))
        if text is None:
            text = error.message[:1].upper() + error.message[1:]
            if not text.endswith("."):
                text += "."
        if error.retry_after_ms:
            text += f" Try again in {error.retry_after_ms / 1000:.0f} s."
        return text
    if isinstance(error, CertificateMismatch):
        return f"The certificate of {error.address} has changed."
    if isinstance(error, ConnectionFailed):
        return f"Cannot reach the server: {error}."
    if isinstance(error, NotConnected):
        return "Not connected; trying to reconnect."
    if isinstance(error, EngineStopped):
        return "The engine stopped before it answered; it is starting again."
    if isinstance(error, SessionEnded):
        return str(error)
    if isinstance(error, ClientError):
        return str(error)
    return f"Something went wrong: {type(error).__name__}: {error}"
