"""The desktop client (``quicmeet``): ttkbootstrap views over the client core.

Tk owns the main thread; the client core runs on an asyncio loop in one thread
beside it (:mod:`client.ui.bridge`); the views only show UI events
(:mod:`client.ui.model`) and call the :class:`~client.ui.controller.Controller`.
"""

from .app import App
from .bridge import Bridge
from .controller import Controller
from .main import main

__all__ = ["App", "Bridge", "Controller", "main"]
