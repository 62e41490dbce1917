"""Who is online, and on which connection.

Node-local state sits behind :class:`PresenceRegistry` so a Redis implementation
can replace :class:`LocalPresence` when several server nodes share the load.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

__all__ = ["LocalPresence", "PresenceRegistry"]

C = TypeVar("C")


class PresenceRegistry(Protocol[C]):
    """Maps a logged-in user to the one connection that holds their session."""

    def attach(self, user_id: int, conn: C) -> C | None:
        """Record ``conn`` for ``user_id``; return the connection it replaces."""

    def detach(self, user_id: int, conn: C) -> bool:
        """Forget ``conn`` if it is still the user's; say whether it was."""

    def connection(self, user_id: int) -> C | None:
        """The user's live connection, if any."""

    def online_count(self) -> int:
        """How many users are online."""


class LocalPresence(Generic[C]):
    """The in-process registry: one dict, for a single server node."""

    def __init__(self) -> None:
        self._by_user: dict[int, C] = {}

    def attach(self, user_id: int, conn: C) -> C | None:
        previous = self._by_user.get(user_id)
        self._by_user[user_id] = conn
        return previous if previous is not conn else None

    def detach(self, user_id: int, conn: C) -> bool:
        if self._by_user.get(user_id) is conn:
            del self._by_user[user_id]
            return True
        return False

    def connection(self, user_id: int) -> C | None:
        return self._by_user.get(user_id)

    def online_count(self) -> int:
        return len(self._by_user)
