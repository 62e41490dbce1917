"""The quicmeet client core: sessions, local state, devices and the CLI."""

from .errors import (
    CertificateMismatch,
    ClientError,
    ConnectionFailed,
    ConnectionLost,
    NotConnected,
    ServerError,
    SessionEnded,
)
from .events import Disconnected, Reconnected, SessionClosed
from .home import Home
from .pinning import PinStore
from .session import Session, parse_address

__all__ = [
    "CertificateMismatch",
    "ClientError",
    "ConnectionFailed",
    "ConnectionLost",
    "Disconnected",
    "Home",
    "NotConnected",
    "PinStore",
    "Reconnected",
    "ServerError",
    "Session",
    "SessionClosed",
    "SessionEnded",
    "parse_address",
]
