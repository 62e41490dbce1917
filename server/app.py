"""The server: wiring of storage, services and connections, and the QUIC listener."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial

from aioquic.quic.configuration import QuicConfiguration

from codec import ALPN, CloseCode
from codec.media.cc import register_media_congestion_control
from codec.messages import Profile, ServerClosing
from udpio import UdpEndpoint, open_endpoint

from .accounts import AccountService
from .certs import ensure_certificate
from .chat import ChatService
from .clock import Clock
from .cluster import AppRouter, ClusterPresence, open_cluster
from .config import ServerConfig
from .connection import Account, ClientConnection
from .context import ServerContext
from .files import FileService
from .heap import HeapFreezer
from .monitor import CollectorWatch, LoopMonitor
from .passwords import PasswordHasher
from .quic_adapter import (
    ConnectionRouter,
    quiet_packets_received,
    short_acks_sent,
    short_datagram_packets,
    short_packets_received,
    short_stream_packets,
)
from .rooms import RoomService
from .router import Router
from .social import SocialService
from .storage import Storage

__all__ = ["ServerApp"]

log = logging.getLogger("quicmeet.server")


class ServerApp:
    """One quicmeet server process.

    ``await start()`` opens storage and listens; ``await shutdown()`` tells every
    client, closes the connections and flushes storage.
    """

    def __init__(self, config: ServerConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.storage = Storage(config.db_url, config.data_dir)
        self.hasher = PasswordHasher(
            config.argon2_opslimit,
            config.argon2_memlimit,
            config.argon2_concurrency,
        )
        self.cluster = open_cluster(config.redis_url, config.node_id)
        self.presence: ClusterPresence[ClientConnection] = ClusterPresence(self.cluster)
        self.connections: set[ClientConnection] = set()
        self.transfer_connections: dict[int, set[ClientConnection]] = {}
        """The transfer connections of each live session, by session id."""
        self.stats: Counter[str] = Counter()
        self.fingerprint = ""
        self.address: tuple[str, int] = (config.host, config.port)
        self.closing = False
        self.monitor = LoopMonitor()
        self.collector = CollectorWatch()
        self.heap: HeapFreezer | None = None
        """Set by ``server.cli``, which owns the process (``server/heap.py``)."""
        self._server: ConnectionRouter | None = None
        self.endpoint: UdpEndpoint | None = None
        """The one UDP socket every client's connection is read and written on."""
        self._session_started: list[Callable[[ClientConnection], Awaitable[None]]] = []
        self._session_ended: list[Callable[[ClientConnection, Account], None]] = []
        self.router = Router(self.stats, lambda: self.closing)
        self.context = ServerContext(
            config=config,
            storage=self.storage,
            presence=self.presence,
            cluster=self.cluster,
            stats=self.stats,
            router=self.router,
            sessions=self,
            clock=clock or Clock(),
        )
        """What the services are given (they never see the app itself)."""
        self.social = SocialService(self.context)
        self.accounts = AccountService(self.context, self.hasher, self._profile_changed)
        self.chat = ChatService(self.context, self.social)
        self.files = FileService(self.context, self.social)
        self.rooms = RoomService(self.context)
        self.files.in_meeting = self._in_meeting
        self.rooms.on_membership = self.files.meeting_changed
        for service in (self.accounts, self.social, self.chat, self.files, self.rooms):
            service.register_handlers(self.router)
        self.sfu = self.rooms.sfu

    # -- wiring ---------------------------------------------------------------

    def _profile_changed(self, user_id: int, profile: Profile) -> None:
        """Friends and the user's meeting learn the new profile at once."""
        self.social.announce_profile(user_id, profile)
        self.rooms.rename(user_id, profile.display_name)

    def quic_configuration(self) -> QuicConfiguration:
        configuration = QuicConfiguration(
            is_client=False,
            alpn_protocols=[ALPN],
            idle_timeout=self.config.idle_timeout,
            max_datagram_frame_size=65536,
            # The same controller as the client's (docs/congestion.md).
            congestion_control_algorithm=register_media_congestion_control(),
        )
        configuration.load_cert_chain(self.config.cert, self.config.key)
        return configuration

    async def start(self) -> tuple[str, int]:
        """Open storage, ensure a certificate, listen; return the address."""
        generated, self.fingerprint = ensure_certificate(
            self.config.cert, self.config.key, self.config.hostnames
        )
        if generated:
            log.info("generated a self-signed certificate at %s", self.config.cert)
        log.info("certificate fingerprint sha256:%s", self.fingerprint)
        before, after = await self.storage.start()
        if before != after:
            log.info("database schema migrated from version %d to %d", before, after)
        # aioquic's QuicServer routes datagrams to connections; our endpoint
        # feeds it in bursts and sends with one system call per peer and turn.
        configuration = self.quic_configuration()
        self.endpoint, protocol = await open_endpoint(
            lambda: ConnectionRouter(
                configuration=configuration,
                create_protocol=partial(ClientConnection, app=self),
                max_unvalidated_handshakes=self.config.max_unvalidated_handshakes,
            ),
            (self.config.host, self.config.port),
            max_receive_delay=self.config.max_receive_delay,
        )
        assert isinstance(protocol, ConnectionRouter)
        self._server = protocol
        sockname = self.endpoint.get_extra_info("sockname")
        self.address = (sockname[0], sockname[1])
        try:
            await self.cluster.start(self.address, AppRouter(self))
        except Exception:
            self._server.close()
            raise
        self.monitor.start()
        self.collector.start()
        self.chat.start()
        self.files.start()
        return self.address

    # -- connections and sessions ---------------------------------------------

    def connection_opened(self, conn: ClientConnection) -> None:
        self.connections.add(conn)
        self.stats["connections_opened"] += 1

    def connection_closed(self, conn: ClientConnection) -> None:
        self.connections.discard(conn)
        self.rooms.session_ended(conn)
        self._end_session(conn)

    def connection_released(self, conn: ClientConnection) -> None:
        """An ended connection's reference cycles were cut: refcounting should
        free it now (the heap freezer counts it if not)."""
        if self.heap is not None:
            self.heap.ended(conn.quic)

    def on_session(
        self,
        started: Callable[[ClientConnection], Awaitable[None]] | None,
        ended: Callable[[ClientConnection, Account], None] | None,
    ) -> None:
        """Have a service told when a user's session starts and ends.

        ``started`` runs (awaited) before the login's reply goes out; ``ended``
        runs when the user's last connection logs out or closes. A session that
        moves to a new connection of the same user neither ends nor restarts.
        """
        if started is not None:
            self._session_started.append(started)
        if ended is not None:
            self._session_ended.append(ended)

    async def attach(self, conn: ClientConnection, account: Account) -> None:
        """Make ``conn`` the account's one live session, kicking any older one."""
        conn.account = account
        previous = self.presence.attach(account.user_id, conn)
        if previous is not None and previous.account is not None:
            old_session = previous.account.session_id
            previous.account = None
            if old_session == account.session_id:
                # The same token resumed on a new connection (a network change):
                # the old path is dead or dying; drop it without revoking anything.
                previous.close_with(
                    CloseCode.NORMAL, "session moved to a new connection"
                )
            else:
                self.accounts.revoke_later(old_session)
                self.close_transfers(old_session, "signed in on another device")
                previous.kick(
                    "signed_in_elsewhere", "this account signed in on another device"
                )
        for started in self._session_started:
            await started(conn)

    def _in_meeting(self, user_id: int) -> bool:
        """Whether the user's live session here is a member of a room here."""
        main = self.context.presence.local_connection(user_id)
        return main is not None and self.rooms.in_meeting(main)

    def attach_transfers(self, conn: ClientConnection, account: Account) -> None:
        """Make ``conn`` a transfer connection of the session ``account``
        names (whose live connection the caller checked)."""
        conn.account = account
        self.transfer_connections.setdefault(account.session_id, set()).add(conn)

    def close_transfers(self, session_id: int, reason: str) -> None:
        """Close every transfer connection of the session ``session_id``."""
        for conn in self.transfer_connections.pop(session_id, set()):
            conn.account = None
            conn.close_with(CloseCode.KICKED, f"session ended: {reason}")

    def detach(self, conn: ClientConnection) -> None:
        """End the connection's session (logout) without closing the connection."""
        self.rooms.session_ended(conn)
        self._end_session(conn)

    def _end_session(self, conn: ClientConnection) -> None:
        account = conn.account
        if account is None:
            return
        conn.account = None
        if account.transfer_only:
            others = self.transfer_connections.get(account.session_id, set())
            others.discard(conn)
            if not others:
                self.transfer_connections.pop(account.session_id, None)
            return
        self.close_transfers(account.session_id, "logged out or offline")
        if self.presence.detach(account.user_id, conn):
            for ended in self._session_ended:
                ended(conn, account)

    def snapshot(self) -> dict[str, object]:
        """Counters and gauges for operators and benchmarks."""
        return {
            **self.stats,
            "connections": len(self.connections),
            "online_users": self.presence.online_count(),
            "short_acks_sent": short_acks_sent(),
            "short_stream_packets": short_stream_packets(),
            "short_datagram_packets": short_datagram_packets(),
            "short_packets_received": short_packets_received(),
            "quiet_packets_received": quiet_packets_received(),
            "chat_batches": self.chat.store.batches,
            "chat_ops_committed": self.chat.store.committed,
            "worst_loop_stall_ms": round(self.monitor.worst_stall_ms, 3),
            "worst_own_loop_stall_ms": (
                None
                if self.monitor.worst_own_stall_ms is None
                else round(self.monitor.worst_own_stall_ms, 3)
            ),
            **self.collector.snapshot(),
            **(self.heap.snapshot() if self.heap is not None else {}),
            **self.rooms.snapshot(),
            **self.cluster.snapshot(),
            **{
                f"udp_{name}": value
                for name, value in (
                    self.endpoint.stats if self.endpoint else {}
                ).items()
            },
            **{
                f"quic_{name}": value
                for name, value in (self._server.stats if self._server else {}).items()
            },
        }

    # -- shutdown -------------------------------------------------------------

    async def shutdown(self, grace: float = 0.3) -> None:
        """Tell every client, close all connections, flush storage."""
        log.info("shutting down: %d connections", len(self.connections))
        self.closing = True
        self.rooms.handover.stop()
        for conn in list(self.connections):
            conn.send(ServerClosing(message="server is shutting down"))
            conn.transmit()
        await asyncio.sleep(min(grace, 0.05) if not self.connections else grace)
        for conn in list(self.connections):
            conn.close_with(CloseCode.SHUTDOWN, "server shutting down")
        await asyncio.sleep(0.05)
        if self._server is not None:
            self._server.close()
        await self.cluster.stop()
        await self.chat.stop()
        self.files.stop()
        self.accounts.close()
        self.monitor.stop()
        self.collector.stop()
        self.hasher.close()
        await asyncio.get_running_loop().run_in_executor(None, self.storage.close)
        log.info("stopped")
