"""The desktop client (``quicmeet``): ttkbootstrap views over the client core.

This process holds Tk and the views only; the client core runs in the engine
process (:mod:`client.engine`), reached through :mod:`client.ui.link`. The
views show UI events (:mod:`client.engine.model`) and call the
:class:`~client.ui.controller.Controller`.
"""

from .app import App
from .controller import Controller
from .link import EngineLink
from .main import main

__all__ = ["App", "Controller", "EngineLink", "main"]
