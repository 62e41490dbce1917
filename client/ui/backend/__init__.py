"""The desktop client's logic on the bridge's asyncio thread (no Tk here)."""

from .account import Account
from .service import Backend

__all__ = ["Account", "Backend"]
