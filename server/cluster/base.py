"""What one server node knows about the others, behind one interface.

:class:`LocalCluster` is the default: a single node, nobody else to tell.
:class:`~server.cluster.redis_cluster.RedisCluster` shares presence and routes
events between nodes through Redis. :class:`ClusterPresence` puts this node's
own connections and the other nodes' users behind the one
``presence.connection(user_id)`` the services already call: a user on another
node comes back as a :class:`RemoteUser` whose ``push`` routes the event there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from codec.messages import Event

from ..presence import LocalPresence

__all__ = [
    "Cluster",
    "ClusterHandler",
    "ClusterPresence",
    "ClusterUnavailable",
    "LocalCluster",
    "RemoteUser",
]

C = TypeVar("C")


class ClusterUnavailable(RuntimeError):
    """The cluster's Redis URL is not one we take, or Redis cannot be reached."""


class ClusterHandler(Protocol):
    """What a node does when another node tells it something (see
    :class:`~server.cluster.routing.AppRouter`)."""

    def event_for(self, user_id: int, event: Event) -> None:
        """Deliver ``event`` to ``user_id``, whose connection is on this node."""

    def session_taken(self, user_id: int, session_id: int) -> None:
        """``user_id`` logged in (with ``session_id``) on another node: end the
        session this node holds for them."""

    def users_gone(self, users: dict[int, int]) -> None:
        """Users of a node that died without saying goodbye (user id -> time
        they were last known online, Unix ms) are offline now."""


class Cluster(Protocol):
    """The node's view of the others. Calls are synchronous and never block:
    what needs the network is queued and sent in order."""

    node_id: str

    async def start(self, address: tuple[str, int], handler: ClusterHandler) -> None:
        """Join the cluster, reachable at ``address`` (host, UDP port)."""

    async def stop(self) -> None:
        """Leave the cluster: this node's users are offline for the others."""

    def user_attached(self, user_id: int, session_id: int) -> None:
        """This node now holds ``user_id``'s session."""

    def user_detached(self, user_id: int) -> None:
        """This node no longer holds ``user_id``'s session."""

    def set_status(self, user_id: int, status: str) -> None:
        """The user (on this node) is now ``online`` or ``away``."""

    def locate(self, user_id: int) -> tuple[str, str] | None:
        """(node id, status) of ``user_id`` when another node holds them."""

    def send_event(self, node_id: str, user_id: int, event: Event) -> None:
        """Have node ``node_id`` deliver ``event`` to ``user_id``."""

    def room_opened(self, room_id: str) -> None:
        """A room now lives on this node."""

    def room_closed(self, room_id: str) -> None:
        """The room that lived on this node is gone."""

    def room_saved(self, room_id: str, record: bytes) -> None:
        """The room on this node changed: ``record`` (an encoded
        :class:`~server.room_state.RoomRecord`) is what another node takes it
        over with if this one dies."""

    async def adopt_room(self, room_id: str) -> bytes | None:
        """Take ``room_id`` over from a node that died: its record, the room
        now living here; None when there is no such room to take (unknown,
        ended, or its node is alive)."""

    async def flushed(self, timeout: float) -> bool:
        """Wait until what this node has told the cluster so far is visible to
        the other nodes; False if that took over ``timeout`` seconds."""

    async def room_node(self, room_id: str) -> str | None:
        """``host:port`` of the live node (not this one) where ``room_id`` lives."""

    def snapshot(self) -> dict[str, Any]:
        """Counters for operators."""


class LocalCluster:
    """A cluster of one: every user is on this node or offline."""

    node_id = "local"

    async def start(self, address: tuple[str, int], handler: ClusterHandler) -> None:
        return None

    async def stop(self) -> None:
        return None

    def user_attached(self, user_id: int, session_id: int) -> None:
        return None

    def user_detached(self, user_id: int) -> None:
        return None

    def set_status(self, user_id: int, status: str) -> None:
        return None

    def locate(self, user_id: int) -> tuple[str, str] | None:
        return None

    def send_event(self, node_id: str, user_id: int, event: Event) -> None:
        return None

    def room_opened(self, room_id: str) -> None:
        return None

    def room_closed(self, room_id: str) -> None:
        return None

    def room_saved(self, room_id: str, record: bytes) -> None:
        return None

    async def adopt_room(self, room_id: str) -> bytes | None:
        return None

    async def flushed(self, timeout: float) -> bool:
        return True

    async def room_node(self, room_id: str) -> str | None:
        return None

    def snapshot(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True, slots=True)
class RemoteUser:
    """A user whose connection is on another node: ``push`` routes there.

    It has no ``account`` (no session of this node's) and is not a connection:
    services that need one check ``isinstance(conn, RemoteUser)``.
    """

    cluster: Cluster
    node_id: str
    user_id: int
    status: str

    account = None

    def push(self, event: Event) -> None:
        self.cluster.send_event(self.node_id, self.user_id, event)


class ClusterPresence(Generic[C]):
    """Who is online: this node's connections first, then the other nodes'."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._local: LocalPresence[C] = LocalPresence()

    def attach(self, user_id: int, conn: C) -> C | None:
        """Record ``conn`` (whose ``account`` is set) for ``user_id``; return the
        connection of this node it replaces. One on another node is told."""
        previous = self._local.attach(user_id, conn)
        session_id = conn.account.session_id  # type: ignore[attr-defined]
        self.cluster.user_attached(user_id, session_id)
        return previous

    def detach(self, user_id: int, conn: C) -> bool:
        if self._local.detach(user_id, conn):
            self.cluster.user_detached(user_id)
            return True
        return False

    def local_connection(self, user_id: int) -> C | None:
        """The user's connection if it is on this node."""
        return self._local.connection(user_id)

    def connection(self, user_id: int) -> C | RemoteUser | None:
        """The user's connection here, a :class:`RemoteUser`, or None (offline)."""
        conn = self._local.connection(user_id)
        if conn is not None:
            return conn
        found = self.cluster.locate(user_id)
        if found is None:
            return None
        return RemoteUser(self.cluster, found[0], user_id, found[1])

    def set_status(self, user_id: int, status: str) -> None:
        """Tell the other nodes the user (on this node) is online or away."""
        self.cluster.set_status(user_id, status)

    def online_count(self) -> int:
        """Users online on this node."""
        return self._local.online_count()
