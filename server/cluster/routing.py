"""What a node does with what the other nodes tell it: deliver events to its
users through the same paths as its own, end sessions that moved elsewhere,
and tell its users when friends on a dead node went offline."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from codec import CloseCode
from codec.messages import (
    ChatMessage,
    Delivered,
    Event,
    FriendAccepted,
    FriendRemoved,
    PresenceChanged,
    ReadReceipt,
)

if TYPE_CHECKING:
    from ..app import ServerApp

__all__ = ["AppRouter"]

log = logging.getLogger("quicmeet.cluster")

_CHAT = (ChatMessage, Delivered, ReadReceipt)
_FRIENDSHIP = (FriendAccepted, FriendRemoved)


class AppRouter:
    """The :class:`~server.cluster.base.ClusterHandler` of a :class:`ServerApp`."""

    def __init__(self, app: ServerApp) -> None:
        self.app = app
        self._held: dict[int, list[Event]] = {}
        """Events for a user whose friend list is being reloaded, in order."""

    def event_for(self, user_id: int, event: Event) -> None:
        held = self._held.get(user_id)
        if held is not None:
            held.append(event)
        elif isinstance(event, _FRIENDSHIP):
            # The friendship changed on another node: reload this node's copy of
            # the friend list before the client hears of it (and acts on it).
            self._held[user_id] = [event]
            asyncio.get_running_loop().create_task(self._reload(user_id))
        else:
            self._deliver(user_id, event)

    async def _reload(self, user_id: int) -> None:
        try:
            await self.app.social.reload_friends(user_id)
        except Exception:
            log.exception("reloading the friends of user %d failed", user_id)
        for event in self._held.pop(user_id, []):
            self._deliver(user_id, event)

    def _deliver(self, user_id: int, event: Event) -> None:
        # Only to a connection here, never on to another node: while a user
        # moves, two nodes' mirrors may each point at the other. A chat event
        # that finds nobody waits in the database for the next sync.
        conn = self.app.presence.local_connection(user_id)
        if conn is None:
            return
        if isinstance(event, _CHAT):
            self.app.chat.deliver(user_id, event)
        else:
            conn.push(event)

    def session_taken(self, user_id: int, session_id: int) -> None:
        conn = self.app.presence.local_connection(user_id)
        if conn is None or conn.account is None:
            return
        if conn.account.session_id == session_id:
            # The same token resumed through another node: this path is dead or
            # dying; close it without revoking anything.
            conn.close_with(CloseCode.NORMAL, "session moved to another node")
        else:
            self.app.accounts.revoke_later(conn.account.session_id)
            self.app.close_transfers(conn.account.session_id, "signed in elsewhere")
            conn.kick("signed_in_elsewhere", "this account signed in on another device")

    def users_gone(self, users: dict[int, int]) -> None:
        for friend_of, friends in list(self.app.social.friends_of.items()):
            for user_id in users.keys() & friends.keys():
                conn = self.app.presence.local_connection(friend_of)
                if conn is not None:
                    conn.push(
                        PresenceChanged(
                            username=friends[user_id],
                            presence="offline",
                            last_seen_ms=users[user_id],
                        )
                    )
