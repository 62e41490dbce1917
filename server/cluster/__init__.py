"""Beyond one node: presence and event routing shared between server nodes.

Without ``--redis`` a node is a cluster of one (:class:`LocalCluster`); with it,
:class:`RedisCluster` shares who is online where and routes events to the node
that holds the recipient's connection.
"""

from __future__ import annotations

from .base import (
    Cluster,
    ClusterHandler,
    ClusterPresence,
    ClusterUnavailable,
    LocalCluster,
    RemoteUser,
)
from .routing import AppRouter

__all__ = [
    "AppRouter",
    "Cluster",
    "ClusterHandler",
    "ClusterPresence",
    "ClusterUnavailable",
    "LocalCluster",
    "RemoteUser",
    "open_cluster",
]


def open_cluster(redis_url: str | None, node_id: str | None = None) -> Cluster:
    """The cluster a node joins: Redis at ``redis_url``, else a cluster of one."""
    if redis_url is None:
        return LocalCluster()
    if not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ClusterUnavailable(
            f"unsupported Redis URL scheme {redis_url.split(':', 1)[0][:20]!r}: "
            "use redis://HOST:PORT/DB"
        )
    # Imported here: the redis package is needed only with --redis (the
    # ``scale`` extra installs it).
    from .redis_cluster import RedisCluster

    return RedisCluster(redis_url, node_id)
