"""The desktop client's logic in the engine process, on its asyncio loop."""

from .account import Account
from .service import Backend

__all__ = ["Account", "Backend"]
