"""The server's settings, filled from the command line or by tests."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ServerConfig"]


@dataclass
class ServerConfig:
    """Everything a server process needs to start.

    Durations are seconds; sizes are bytes.
    """

    host: str = "127.0.0.1"
    port: int = 4433
    data_dir: Path = Path("data")
    db_url: str | None = None
    blob_dir: Path | None = None
    """Where files' bytes live (default ``data_dir/files``); several nodes that
    share one directory serve each other's files."""
    redis_url: str | None = None
    """Redis shared by the nodes of a cluster (None: this node is alone)."""
    node_id: str | None = None
    """This node's name in the cluster (None: a random one at each start)."""
    drain_timeout: float = 0.0
    """Seconds a SIGTERM waits for running meetings to end, with no new rooms
    and other users sent on to other nodes, before stopping (0: stop at once)."""
    cert: Path = Path("certs/cert.pem")
    key: Path = Path("certs/key.pem")
    hostnames: list[str] = field(default_factory=list)

    idle_timeout: float = 5.0
    """A client silent this long is declared gone (clients ping every 1.5 s)."""
    max_receive_delay: float | None = 0.25
    """A datagram that waited longer than this in the node's socket is dropped
    unread, and while a queue stands there (over 20 ms for 100 ms) so are
    those of a shrinking share of the connections (None: nothing is dropped):
    working through datagrams whose senders have probed for them again kept a
    node that fell behind from ever catching up (docs/operations.md,
    :mod:`udpio.queue_delay`)."""
    max_unvalidated_handshakes: int | None = 128
    """Handshakes begun without a Retry, unfinished, beyond which a new
    connection is asked to prove its address with a QUIC Retry first (one
    round trip more for it; a flood of first flights then costs the node a
    token each instead of a handshake). 0: always; None: never."""
    session_ttl: float = 30 * 24 * 3600.0
    """How long a session token resumes without a password."""

    argon2_opslimit: int = 2
    argon2_memlimit: int = 19 * 1024 * 1024
    argon2_concurrency: int = max(1, (os.cpu_count() or 2) - 1)
    """Hashes at once: one core is always left for the event loop."""

    request_rate: float = 100.0
    """Requests per second a connection may sustain."""
    request_burst: float = 200.0
    max_pending_requests: int = 256
    """Requests queued on one connection before new ones are refused."""
    abuse_strikes: int = 100
    """Refused or malformed requests, beyond a slow trickle, before disconnecting."""

    retention_days: float = 30.0
    """Delivered chat messages are kept this long on the server."""
    chat_rate: float = 50.0
    """Chat messages per second one user may sustain."""
    chat_burst: float = 100.0

    max_room_members: int = 16
    """Members one meeting room may hold (a room may ask for fewer)."""
    max_rooms_per_user: int = 4
    """Rooms one account may have open at once."""
    empty_room_ttl: float = 300.0
    """How long a room with no members waits for someone before it closes."""
    room_join_rate: float = 1.0
    """Join attempts per second a connection may sustain (bursts of 5)."""
    sfu_max_queued_datagrams: int = 128
    """Datagrams waiting in one subscriber's aioquic queue beyond which the SFU
    drops media for it instead of building delay."""
    sfu_max_queue_delay: float = 0.15
    """Seconds a subscriber's datagram queue may stay non-empty before the SFU
    drops media for it."""

    max_file_size: int = 8 * 1024**3
    """Largest file one transfer may carry, in bytes."""
    quota_bytes: int = 100 * 1024**3
    """Bytes of files one user may have on the server (uploading or kept)."""
    max_transfers: int = 8
    """Upload and download streams one user may have open at once."""

    stats_file: Path | None = None
    """Where ``quicmeet-server`` writes its counters (JSON) at exit and on SIGUSR1."""
    freeze_heap: bool = True
    """Whether ``quicmeet-server`` keeps the garbage collector's full passes
    short by freezing what survived them (``server/heap.py``); a library user
    of ``ServerApp`` is never affected (the process is not its own)."""

    @property
    def files_dir(self) -> Path:
        """The blob store's directory: ``blob_dir``, else ``data_dir/files``."""
        return self.blob_dir if self.blob_dir is not None else self.data_dir / "files"
