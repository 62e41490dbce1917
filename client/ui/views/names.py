"""Who is who, for views that only know a username (transfers, invitations):
the display names of the friends in the latest roster, per app window."""

from __future__ import annotations

import tkinter as tk
import weakref

from ...engine.model import Roster

__all__ = ["display_name", "remember_names"]

_BOOKS: weakref.WeakKeyDictionary[tk.Misc, dict[str, str]] = weakref.WeakKeyDictionary()


def remember_names(widget: tk.Misc, roster: Roster) -> None:
    """Keep the names of ``roster``'s friends for every view of ``widget``'s app."""
    _BOOKS[widget._root()] = {f.person.username: f.person.name for f in roster.friends}


def display_name(widget: tk.Misc, username: str) -> str:
    """The name to show for ``username``: a friend's display name, else the
    username itself."""
    return _BOOKS.get(widget._root(), {}).get(username, username)
