"""The client core's public API: one :class:`Session` per logged-in user.

The CLI, the desktop client and the tests all drive the server through this
class. It owns the QUIC connection, pins the server's certificate, turns replies
into return values and ``Error`` replies into :class:`ServerError`, delivers
server events through :meth:`Session.events`, and after a network loss
reconnects by itself (with backoff) and resumes the session with its token.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from codec import CloseCode, ErrorCode
from codec.messages import (
    AvatarImage,
    ChangePassword,
    Event,
    GetAvatar,
    GetProfile,
    Kicked,
    LoggedIn,
    Login,
    Logout,
    Profile,
    ProfileInfo,
    PutAvatar,
    Register,
    Registered,
    Reply,
    Request,
    Resume,
    SearchUsers,
    StreamRequest,
    UpdateProfile,
    UserPage,
)

from .errors import (
    ClientError,
    NotConnected,
    ServerError,
    SessionEnded,
)
from .events import Disconnected, Reconnected, SessionClosed
from .pinning import PinStore
from .rooms import Rooms
from .transport import ClientProtocol, open_connection

__all__ = ["Session", "parse_address"]

log = logging.getLogger("quicmeet.session")

R = TypeVar("R", bound=Reply)
SessionEvent = Event | Disconnected | Reconnected | SessionClosed
MAX_QUEUED_EVENTS = 10_000


def parse_address(server: str, default_port: int = 4433) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` for IPv6); the port defaults to 4433."""
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        port = rest.removeprefix(":")
    elif server.count(":") == 1:
        host, port = server.split(":")
    else:
        host, port = server, ""
    if not host:
        raise ValueError(f"no host in server address {server!r}")
    if not port:
        return host, default_port
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad port in server address {server!r}")
    return host, int(port)


class Session:
    """A connection to one quicmeet server, and the login on it.

    ``server`` is ``host:port``, or several nodes of one cluster separated by
    commas: the first is used first, and each reconnection attempt goes to the
    next node, so a client whose node died is back on another one at once.
    ``pins`` pins certificates (trust on first use); ``ca_file`` trusts a CA
    instead. ``reconnect`` turns automatic reconnection on after a login.
    ``on_login`` is called with every ``LoggedIn`` reply (to save the token).
    ``idle_timeout`` (seconds) bounds how long a silent path is trusted before the
    connection is declared dead and reconnecting begins (keepalives go out at a
    third of it).
    """

    def __init__(
        self,
        server: str,
        *,
        pins: PinStore | None = None,
        ca_file: Path | None = None,
        reconnect: bool = True,
        max_backoff: float = 10.0,
        idle_timeout: float = 5.0,
        on_login: Callable[[LoggedIn], None] | None = None,
        congestion_control: str | None = None,
    ) -> None:
        self.server = server
        self.servers = [parse_address(part.strip()) for part in server.split(",")]
        """Every node of the server's cluster the client may use, in order."""
        self.host, self.port = self.servers[0]
        self.pins = pins if pins is not None else PinStore(None)
        self.ca_file = ca_file
        self.reconnect = reconnect
        self.max_backoff = max_backoff
        self.idle_timeout = idle_timeout
        self.on_login = on_login
        self.congestion_control = congestion_control
        """The name of the connections' congestion controller, if not the
        media controller (:func:`~client.transport.client_configuration`)."""
        self.fingerprint: str | None = None
        self.newly_pinned = False
        self.profile: Profile | None = None
        self.token: bytes | None = None
        self.dropped_events = 0
        self._proto: ClientProtocol | None = None
        self._events: asyncio.Queue[SessionEvent] = asyncio.Queue()
        self._ready = asyncio.Event()
        self._closing = False
        self._reconnect_task: asyncio.Task[None] | None = None
        self._restore_hooks: list[Callable[[], Awaitable[None]]] = []
        self._login_hooks: list[Callable[[], Awaitable[None]]] = []
        self._event_hooks: list[Callable[[Event], None]] = []
        self._ended: SessionEnded | None = None
        self.rooms = Rooms(self)
        """Meetings: create, join and run rooms, and the media datagrams."""

    # -- connection -----------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._proto is not None and self._proto.is_open

    @property
    def logged_in(self) -> bool:
        return self.profile is not None and self.connected

    @property
    def rtt_ms(self) -> float | None:
        """Smoothed round-trip time to the server in milliseconds; None when not
        connected or before the first sample."""
        proto = self._proto
        return proto.rtt_ms if proto is not None and proto.is_open else None

    async def connect(self, timeout: float = 10.0, *, ready: bool = True) -> str:
        """Connect and check the certificate; return its SHA-256 fingerprint.

        Raises :class:`ConnectionFailed`, or :class:`CertificateMismatch` when the
        server's certificate differs from the one pinned for this address.
        """
        proto = await open_connection(
            self.host,
            self.port,
            ca_file=self.ca_file,
            timeout=timeout,
            idle_timeout=self.idle_timeout,
            congestion_control=self.congestion_control,
        )
        try:
            fingerprint = proto.peer_fingerprint()
            if self.ca_file is None:
                self.newly_pinned = self.pins.check(
                    f"{self.host}:{self.port}", fingerprint
                )
        except ClientError:
            proto.close_quietly(CloseCode.NORMAL, "certificate refused")
            raise
        self.fingerprint = fingerprint
        self._attach(proto, ready)
        return fingerprint

    def _attach(self, proto: ClientProtocol, ready: bool = True) -> None:
        proto.on_event = self._on_event
        proto.on_closed = self._on_closed
        proto.on_datagram = self.rooms.on_datagram
        self._proto = proto
        if ready:
            self._ready.set()

    def _on_event(self, event: Event) -> None:
        if isinstance(event, Kicked):
            self._ended = SessionEnded(event.reason, event.message)
        for hook in self._event_hooks:
            hook(event)
        self._emit(event)

    def add_event_hook(self, hook: Callable[[Event], None]) -> None:
        """Call ``hook`` with every server event before it reaches :meth:`events`."""
        self._event_hooks.append(hook)

    def add_login_hook(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` after every login, resume and automatic reconnect."""
        self._login_hooks.append(hook)

    async def _after_login(self) -> None:
        for hook in list(self._login_hooks):
            try:
                await hook()
            except ClientError as exc:
                log.warning("after-login step failed: %s", exc)

    def _emit(self, event: SessionEvent) -> None:
        if self._events.qsize() >= MAX_QUEUED_EVENTS:
            self._events.get_nowait()
            self.dropped_events += 1
        self._events.put_nowait(event)

    def _on_closed(self, proto: ClientProtocol) -> None:
        if proto is not self._proto:
            return
        self._ready.clear()
        if self._closing:
            return
        kicked = proto.kicked is not None or proto.close_code == CloseCode.KICKED
        if kicked:
            reason = proto.kicked.reason if proto.kicked else proto.close_reason
            message = proto.kicked.message if proto.kicked else "session ended"
            self._ended = SessionEnded(reason, message)
            self.profile = None
            self._emit(SessionClosed(reason, message))
            return
        reason = proto.close_reason or "connection lost"
        retry = self.reconnect and self.token is not None
        self._emit(Disconnected(reason, retry))
        if retry and self._reconnect_task is None:
            self._reconnect_task = asyncio.get_running_loop().create_task(
                self._reconnect_loop()
            )

    async def _reconnect_loop(self) -> None:
        started = time.monotonic()
        attempt = 0
        try:
            while not self._closing:
                attempt += 1
                delay = min(self.max_backoff, 0.2 * 2 ** min(attempt - 1, 10))
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                self._next_server()
                try:
                    # Requests wait until the session is resumed, not just
                    # until the connection is up.
                    await self.connect(ready=False)
                    assert self.token is not None
                    await self._resume(self.token)
                    self._ready.set()
                except ServerError as exc:
                    if exc.code == ErrorCode.INVALID_TOKEN:
                        self.profile = None
                        self._ended = SessionEnded("token_invalid", exc.message)
                        self._emit(SessionClosed("token_invalid", exc.message))
                        self._drop_connection()
                        return
                    self._drop_connection()
                    continue
                except ClientError as exc:
                    log.debug("reconnect attempt %d failed: %s", attempt, exc)
                    self._drop_connection()
                    if isinstance(exc, SessionEnded):
                        return
                    continue
                await self._after_login()
                for hook in list(self._restore_hooks):
                    try:
                        await hook()
                    except ClientError as exc:
                        log.warning("restoring state after reconnect failed: %s", exc)
                if not self.connected:
                    continue  # lost again while restoring: keep trying
                self._emit(Reconnected(attempt, time.monotonic() - started))
                return
        finally:
            self._reconnect_task = None

    async def move_to(self, address: str, timeout: float = 10.0) -> None:
        """Resume this session on the cluster node at ``address`` (``host:port``),
        then close the connection to the old one: what a node asks for when
        what the client wants (a meeting) lives elsewhere. Chat syncs there as
        after any reconnection. Raises :class:`ClientError` (the old connection
        is kept then)."""
        if self.token is None:
            raise NotConnected("log in first")
        target = parse_address(address)
        if target not in self.servers:
            self.servers.append(target)
        old, old_target = self._proto, (self.host, self.port)
        self.host, self.port = target
        self._ready.clear()  # requests wait for the session on the new node
        try:
            await self.connect(timeout, ready=False)
            await self._resume(self.token)
        except ClientError:
            if self._proto is not old:  # the new connection came up, then failed
                self._drop_connection()
            self.host, self.port = old_target
            if old is not None and old.is_open:
                self._attach(old)
            raise
        self._ready.set()
        if old is not None:
            old.close_quietly()
        await self._after_login()

    def _next_server(self) -> None:
        """Move on to the next node of the cluster (no-op with one address)."""
        index = self.servers.index((self.host, self.port))
        self.host, self.port = self.servers[(index + 1) % len(self.servers)]

    def _drop_connection(self) -> None:
        proto = self._proto
        if proto is not None:
            self._proto = None
            proto.close_quietly()

    def add_restore_hook(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` after every successful reconnect (to rejoin rooms etc.)."""
        self._restore_hooks.append(hook)

    async def wait_ready(self, timeout: float) -> ClientProtocol:
        """The live connection, waiting up to ``timeout`` s while reconnecting."""
        if self._ended is not None and self.profile is None and self.token is None:
            raise self._ended
        while not (self._ready.is_set() and self.connected):
            if self._reconnect_task is None:
                raise NotConnected("not connected")
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                raise NotConnected("still reconnecting") from None
        assert self._proto is not None
        return self._proto

    async def close(self) -> None:
        """Close the connection for good (the session token stays valid)."""
        self._closing = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
            self._reconnect_task = None
        self._drop_connection()
        self._ready.clear()

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- requests -------------------------------------------------------------

    async def call(
        self,
        request_type: type[Request],
        expect: type[R],
        *,
        timeout: float = 30.0,
        **fields: Any,
    ) -> R:
        """Send one request and return its reply, which must be of type ``expect``."""
        proto = await self.wait_ready(timeout)
        reply = await proto.request(
            request_type(rid=proto.next_rid(), **fields), timeout
        )
        if not isinstance(reply, expect):
            raise ClientError(
                f"{request_type.__name__} got {type(reply).__name__}, "
                f"expected {expect.__name__}"
            )
        return reply

    async def upload(
        self,
        request_type: type[StreamRequest],
        data: bytes,
        expect: type[R],
        **fields: Any,
    ) -> R:
        """Send ``data`` on a new stream after a ``request_type`` frame."""
        proto = await self.wait_ready(30.0)
        reply = await proto.upload(request_type(rid=proto.next_rid(), **fields), data)
        if not isinstance(reply, expect):
            raise ClientError(f"{request_type.__name__} got {type(reply).__name__}")
        return reply

    async def events(self) -> AsyncIterator[SessionEvent]:
        """Server events and connection events, in the order they happened."""
        while True:
            yield await self._events.get()

    async def next_event(self, timeout: float | None = None) -> SessionEvent:
        """The next event, waiting up to ``timeout`` seconds."""
        return await asyncio.wait_for(self._events.get(), timeout)

    # -- accounts -------------------------------------------------------------

    async def register(self, username: str, password: str) -> Profile:
        """Create an account (does not log in)."""
        reply = await self.call(
            Register, Registered, username=username, password=password
        )
        return reply.profile

    async def login(self, username: str, password: str) -> Profile:
        """Log in with a password; any other session of the account is ended."""
        reply = await self.call(Login, LoggedIn, username=username, password=password)
        self._logged_in(reply)
        await self._after_login()
        return reply.profile

    async def resume(self, token: bytes) -> Profile:
        """Log in with the token of an earlier login."""
        profile = await self._resume(token)
        await self._after_login()
        return profile

    async def _resume(self, token: bytes) -> Profile:
        proto = self._proto
        if proto is None:
            raise NotConnected("not connected")
        reply = await proto.request(Resume(rid=proto.next_rid(), token=token))
        assert isinstance(reply, LoggedIn)
        self._logged_in(reply)
        return reply.profile

    def _logged_in(self, reply: LoggedIn) -> None:
        self.profile = reply.profile
        self.token = reply.token
        self._ended = None
        if self.on_login is not None:
            self.on_login(reply)

    async def logout(self) -> None:
        """End the session and revoke its token; the connection stays open."""
        await self.call(Logout, Reply)
        self.profile = None
        self.token = None

    async def change_password(self, old: str, new: str) -> None:
        """Change the password; every other session of the account ends."""
        await self.call(ChangePassword, Reply, old_password=old, new_password=new)

    async def get_profile(self, username: str | None = None) -> Profile:
        reply = await self.call(GetProfile, ProfileInfo, username=username)
        if username is None:
            self.profile = reply.profile
        return reply.profile

    async def update_profile(
        self,
        *,
        display_name: str | None = None,
        mood: str | None = None,
        avatar_icon: int | None = None,
    ) -> Profile:
        reply = await self.call(
            UpdateProfile,
            ProfileInfo,
            display_name=display_name,
            mood=mood,
            avatar_icon=avatar_icon,
        )
        self.profile = reply.profile
        return reply.profile

    async def set_avatar(self, image: bytes) -> Profile:
        """Upload a PNG or JPEG (at most 256 KiB) as one's avatar picture."""
        reply = await self.upload(PutAvatar, image, ProfileInfo, size=len(image))
        self.profile = reply.profile
        return reply.profile

    async def get_avatar(self, username: str) -> bytes:
        """The avatar picture of ``username`` (PNG)."""
        reply = await self.call(GetAvatar, AvatarImage, username=username)
        return reply.image

    async def search(
        self, prefix: str, *, after: str | None = None, limit: int = 20
    ) -> tuple[list[Profile], str | None]:
        """One page of users whose names start with ``prefix``, and the next cursor."""
        reply = await self.call(
            SearchUsers, UserPage, prefix=prefix, after=after, limit=limit
        )
        return reply.users, reply.next_after
