"""The meeting-room side of a :class:`~client.session.Session`: ``session.rooms``.

:class:`Rooms` wraps the requests of :mod:`codec.messages.rooms`, keeps the
state of the room this session is in (``rooms.state``), and fans the room's
events out to listeners (the media pipeline, a UI). Listeners get the server's
room events, plus two the client makes itself so one code path serves all
cases: a ``RoomUpdated`` with the reply's state after create and join, and a
``RoomLeft`` after leaving (``reason="left"``) or when the room could not be
rejoined after a reconnect (``reason="connection_lost"``).

It is also where the media plane meets the connection: received datagrams go
to :attr:`Rooms.datagram_handler` and :meth:`Rooms.send_datagrams` puts a burst
on the wire.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from codec import ErrorCode
from codec.media import BASE_MEDIA_PAYLOAD
from codec.media.packet import VIDEO_HEADER_SIZE
from codec.messages import (
    AskToMute,
    AudioLossReported,
    CreateRoom,
    DeclineInvitation,
    EndRoom,
    Event,
    GetRoom,
    InvitationDeclined,
    InviteToRoom,
    JoinRoom,
    LeaveRoom,
    LockRoom,
    MuteRequested,
    Ok,
    PublishTrack,
    RemoveMember,
    ReportAudioLoss,
    RoomChat,
    RoomElsewhere,
    RoomInfo,
    RoomInvitation,
    RoomJoined,
    RoomLeft,
    RoomState,
    RoomTrack,
    RoomUpdated,
    SendRoomChat,
    SetMemberState,
    TrackPublished,
    TransferHost,
    UnpublishTrack,
    ViewTrack,
)
from codec.messages.base import Request
from codec.messages.rooms import TrackKind, parse_room_id

from .errors import ClientError, ServerError
from .listeners import Listeners

if TYPE_CHECKING:
    from .session import Session

__all__ = ["RoomEvent", "RoomListener", "Rooms"]

log = logging.getLogger("quicmeet.rooms")

RoomEvent = (
    RoomUpdated
    | RoomLeft
    | RoomChat
    | RoomInvitation
    | InvitationDeclined
    | MuteRequested
    | AudioLossReported
)
RoomListener = Callable[[RoomEvent], None]

REJOIN_PATIENCE = 15.0
"""Seconds a rejoin after a reconnect keeps trying while the cluster sends us
to the room's node."""
REJOIN_MOVE_AFTER = 5.0
"""Seconds of being sent to the room's node before we go there: a node that
died counts as alive for up to about 4 s (its heartbeat's time to live), and
then the node we are on takes the room over."""
REJOIN_MOVE_TIMEOUT = 2.0
"""Seconds to reach the room's node when rejoining (a dead one never answers)."""
REJOIN_RETRY = 1.0
"""Seconds between attempts to rejoin (a server lets a connection try to join
once a second, in bursts of five)."""
_ROOM_EVENTS = (
    RoomUpdated,
    RoomLeft,
    RoomChat,
    RoomInvitation,
    InvitationDeclined,
    MuteRequested,
    AudioLossReported,
)


class Rooms:
    """Create, join and run meetings through one session."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self.state: RoomState | None = None
        """The room this session is in, as last told by the server."""
        self.invitations: dict[str, RoomInvitation] = {}
        """Invitations received, by room id (the newest per room)."""
        self.datagram_handler: Callable[[bytes], None] | None = None
        """Called on the event loop with every datagram the server sends."""
        self._password: str | None = None
        self._listeners: Listeners[RoomEvent] = Listeners(log, "room")
        self._elsewhere: dict[str, str] = {}
        """Room id -> ``host:port`` of the node hosting it, as a node told us."""
        self._joins = 0
        """Join or create requests under way."""
        self._pushed: dict[str, RoomState] = {}
        """While one is under way: the newest room state pushed meanwhile, by
        room id."""
        session.add_restore_hook(self._rejoin)
        session.add_event_hook(self.on_event)

    # -- state ------------------------------------------------------------------

    @property
    def room_id(self) -> str | None:
        return self.state.room_id if self.state is not None else None

    @property
    def me(self) -> str | None:
        profile = self._session.profile
        return profile.username if profile is not None else None

    @property
    def is_host(self) -> bool:
        return self.state is not None and self.state.host == self.me

    def add_listener(self, listener: RoomListener) -> Callable[[], None]:
        """Call ``listener`` with every room event; returns a function that stops
        it (calling that again does nothing)."""
        return self._listeners.add(listener)

    def on_event(self, event: Event) -> None:
        """Take a server event (the session hands every one over)."""
        if isinstance(event, RoomElsewhere):
            self._elsewhere[event.room_id] = event.node
            return
        if not isinstance(event, _ROOM_EVENTS):
            return
        if isinstance(event, RoomUpdated):
            if self._joins:
                seen = self._pushed.get(event.room.room_id)
                if seen is None or seen.version < event.room.version:
                    self._pushed[event.room.room_id] = event.room
            current = self.state
            if (
                current is not None
                and current.room_id == event.room.room_id
                and current.version > event.room.version
            ):
                return
            self.state = event.room
        elif isinstance(event, RoomLeft):
            if self.room_id != event.room_id:
                return
            self.state = None
            self._password = None
        elif isinstance(event, RoomInvitation):
            self.invitations[event.room_id] = event
        self._listeners.notify(event)

    async def _call_join(self, request: type[Request], **fields: Any) -> RoomState:
        """Send a join or create request; the room state it enters. The server
        pushes room updates on other streams than its reply, so an update it
        sent after the reply (another member arriving) can arrive first: then
        that update, the newer, is the state, not the reply's."""
        self._joins += 1
        try:
            reply = await self._session.call(request, RoomJoined, **fields)
        finally:
            self._joins -= 1
            pushed = self._pushed
            if not self._joins:
                self._pushed = {}
        newer = pushed.get(reply.room.room_id)
        if newer is not None and newer.version > reply.room.version:
            return newer
        return reply.room

    def _entered(self, state: RoomState, password: str | None) -> RoomState:
        self.state = state
        self._password = password
        self.invitations.pop(state.room_id, None)
        self._listeners.notify(RoomUpdated(room=state))
        return state

    async def _rejoin(self) -> None:
        """After a reconnect: take our seat again (the server may have kept it).

        In a cluster we may land on another node than the room's. When that
        node died, the cluster knows it within seconds and the room is then
        taken over where we are: so we ask again here first, and move to the
        room's node only if it still counts as alive after that."""
        room_id = self.room_id
        if room_id is None:
            return
        key = parse_room_id(room_id) or room_id
        started = time.monotonic()
        while True:
            try:
                state = await self._call_join(
                    JoinRoom, room_id=room_id, password=self._password
                )
                break
            except ClientError as exc:
                elsewhere = self._elsewhere.pop(key, None)
                waited = time.monotonic() - started
                if (
                    not isinstance(exc, ServerError)
                    or exc.code != ErrorCode.ROOM_ELSEWHERE
                    or waited >= REJOIN_PATIENCE
                ):
                    self._lost(room_id, exc)
                    return
            if elsewhere is not None and waited >= REJOIN_MOVE_AFTER:
                try:
                    await self._session.move_to(elsewhere, timeout=REJOIN_MOVE_TIMEOUT)
                    continue
                except ClientError as exc:
                    log.debug("room %s: its node did not answer: %s", room_id, exc)
            await asyncio.sleep(REJOIN_RETRY)
        self._entered(state, self._password)

    def _lost(self, room_id: str, exc: ClientError) -> None:
        self.state = None
        self._password = None
        self._listeners.notify(
            RoomLeft(
                room_id=room_id,
                reason="connection_lost",
                message=f"could not rejoin after reconnecting: {exc}",
            )
        )

    # -- joining and leaving ----------------------------------------------------

    async def create(
        self, password: str | None = None, max_members: int | None = None
    ) -> RoomState:
        """Create a room and join it as host; its id is ``state.room_id``."""
        state = await self._call_join(
            CreateRoom, password=password, max_members=max_members
        )
        return self._entered(state, password)

    async def join(self, room_id: str, password: str | None = None) -> RoomState:
        """Join a room by id (as typed); leaves the room we were in. A room on
        another node of the cluster is joined there: the session moves first."""
        try:
            state = await self._call_join(JoinRoom, room_id=room_id, password=password)
        except ServerError as exc:
            elsewhere = self._elsewhere.pop(parse_room_id(room_id) or "", None)
            if exc.code != ErrorCode.ROOM_ELSEWHERE or elsewhere is None:
                raise
            await self._session.move_to(elsewhere)
            state = await self._call_join(JoinRoom, room_id=room_id, password=password)
        return self._entered(state, password)

    async def accept(self, invitation: RoomInvitation) -> RoomState:
        """Accept an invitation: join its room without a password."""
        return await self.join(invitation.room_id)

    async def decline(self, room_id: str) -> None:
        """Say no to the invitation to ``room_id``; the inviter is told."""
        self.invitations.pop(room_id, None)
        await self._session.call(DeclineInvitation, Ok, room_id=room_id)

    async def leave(self) -> None:
        """Leave the room; our tracks end."""
        room_id = self.room_id
        await self._session.call(LeaveRoom, Ok)
        self.state = None
        self._password = None
        if room_id is not None:
            self._listeners.notify(
                RoomLeft(room_id=room_id, reason="left", message="you left")
            )

    async def refresh(self) -> RoomState:
        """Fetch the room's state from the server."""
        reply = await self._session.call(GetRoom, RoomInfo)
        self.state = reply.room
        return reply.room

    # -- host -------------------------------------------------------------------

    async def end(self) -> None:
        """End the meeting for everyone (host only)."""
        await self._session.call(EndRoom, Ok)

    async def lock(self, locked: bool = True) -> None:
        """Refuse (or again admit) people joining by id (host only)."""
        await self._session.call(LockRoom, Ok, locked=locked)

    async def remove(self, username: str) -> None:
        """Remove a member; they may come back only if invited (host only)."""
        await self._session.call(RemoveMember, Ok, username=username)

    async def ask_to_mute(self, username: str) -> None:
        """Ask a member to mute their microphone (host only)."""
        await self._session.call(AskToMute, Ok, username=username)

    async def make_host(self, username: str) -> None:
        """Hand the host role to another member (host only)."""
        await self._session.call(TransferHost, Ok, username=username)

    # -- members ----------------------------------------------------------------

    async def invite(self, username: str) -> None:
        """Invite an online friend into our room."""
        await self._session.call(InviteToRoom, Ok, username=username)

    async def chat(self, text: str) -> None:
        """Say ``text`` to the room; it comes back to us as a ``RoomChat`` too."""
        await self._session.call(SendRoomChat, Ok, text=text)

    async def raise_hand(self, raised: bool = True) -> None:
        await self._session.call(SetMemberState, Ok, hand_raised=raised)

    async def set_muted(self, muted: bool) -> None:
        """Tell the room whether our microphone is muted."""
        await self._session.call(SetMemberState, Ok, muted=muted)

    # -- tracks and datagrams ---------------------------------------------------

    async def publish(
        self, kind: TrackKind, width: int = 0, height: int = 0, fps: float = 0.0
    ) -> RoomTrack:
        """Announce a track; send its datagrams with the returned ``track_id``."""
        reply = await self._session.call(
            PublishTrack, TrackPublished, kind=kind, width=width, height=height, fps=fps
        )
        return reply.track

    async def report_audio_loss(self, track_id: int, lost_fraction: float) -> None:
        """Tell the publisher of the microphone track ``track_id`` the share
        (0..1) of its frames we lost in our last period."""
        await self._session.call(
            ReportAudioLoss, Ok, track_id=track_id, lost_fraction=lost_fraction
        )

    async def view_track(self, track_id: int, width: int, height: int) -> None:
        """Show another member's video track ``track_id`` at most ``width``
        x ``height`` pixels (0 x 0: no limit): the server sends no larger
        simulcast layer than that needs."""
        await self._session.call(
            ViewTrack, Ok, track_id=track_id, width=width, height=height
        )

    async def unpublish(self, track_id: int) -> None:
        await self._session.call(UnpublishTrack, Ok, track_id=track_id)

    def on_datagram(self, data: bytes) -> None:
        """Take a datagram from the connection (on the event loop)."""
        handler = self.datagram_handler
        if handler is not None:
            handler(data)

    def send_datagrams(self, datagrams: Sequence[bytes], max_queued: int) -> bool:
        """Send a burst with one transmit; False (nothing sent) when there is no
        connection or it would leave more than ``max_queued`` datagrams waiting."""
        proto = self._session._proto
        if proto is None:
            return False
        return proto.send_datagrams(datagrams, max_queued)

    def datagrams_queued(self) -> int | None:
        """Datagrams waiting in the connection's queue (None: no connection)."""
        proto = self._session._proto
        if proto is None:
            return None
        return proto.datagrams_queued

    def max_media_datagram(self) -> int:
        """The largest media datagram (bytes, header included) to send now:
        what the connection's packets carry and, in a room, what every
        member's connection carries (the room's state says)."""
        proto = self._session._proto
        if proto is None:
            return VIDEO_HEADER_SIZE + BASE_MEDIA_PAYLOAD
        own = proto.max_media_datagram
        state = self.state
        return own if state is None else min(own, state.max_datagram)

    def set_media_rate(self, rate_bps: float) -> None:
        """The media hop's estimate (bits per second), for the connection's
        congestion window (nothing without a connection)."""
        proto = self._session._proto
        if proto is not None:
            proto.set_media_rate(rate_bps)

    def rtt_s(self) -> float | None:
        """The connection's smoothed round trip in seconds (None before the
        first sample, or without a connection)."""
        proto = self._session._proto
        if proto is None or proto.rtt_ms is None:
            return None
        return proto.rtt_ms / 1000.0
