"""The quicmeet QUIC server."""

from .app import ServerApp
from .config import ServerConfig

__all__ = ["ServerApp", "ServerConfig"]
