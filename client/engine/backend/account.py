"""One signed-in account on the loop thread: its session, chat, friend list,
open conversations and avatars, and the server events that move them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from codec.messages import (
    ChatMessage,
    Delivered,
    Event,
    FriendAccepted,
    FriendRequested,
    ReadReceipt,
    TypingChanged,
)

from ...errors import ClientError
from ...events import Disconnected, Reconnected, SessionClosed
from ...session import Session
from ...social import Chat, Friends
from ...store import LocalMessage, LocalStore
from ...transfers import Transfer
from ..frames import TileFrames
from ..model import ConnectionState, Notice, Person, ProfileUpdated, UiEvent
from .avatars import Avatars, prepare_upload
from .conversations import Conversations
from .files import FilesModel
from .meeting import MeetingModel, VideoSettings
from .meeting_audio import AudioSettings
from .roster import RosterModel, person

__all__ = ["Account"]

log = logging.getLogger("quicmeet.engine.account")

NOTICE_TEXT_CHARS = 120


class Account:
    """Everything that lives as long as one sign-in.

    Create it before logging in (chat must see the first sync), call
    :meth:`start` once logged in and :meth:`close` at the end. ``on_ended`` is
    called when the server ends the session (signed in elsewhere, ...);
    received files go to ``downloads``; meeting pictures go to ``frames``.
    """

    def __init__(
        self,
        session: Session,
        store: LocalStore,
        post: Callable[[UiEvent], None],
        on_ended: Callable[[Account, str, str], Coroutine[Any, Any, None]],
        downloads: Path,
        frames: TileFrames,
        video_settings: Callable[[], VideoSettings],
        audio_settings: Callable[[], AudioSettings] = AudioSettings,
    ) -> None:
        self.session = session
        self.store = store
        self._post = post
        self._on_ended = on_ended
        self.chat = Chat(session, store)
        self.friends = Friends(session)
        self.roster = RosterModel(self.friends, post)
        self.conversations = Conversations(
            self.chat, store, post, on_read=self.request_unread
        )
        self.avatars = Avatars(post, session.get_avatar)
        self.files = FilesModel(session, store, post, downloads)
        self.meeting = MeetingModel(
            session, post, frames, video_settings, self._name_of, audio_settings
        )
        # While a meeting's media flow, uploads give way to them.
        self.files.transfers.media_active = lambda: self.meeting.call is not None
        self._dirty: set[str] = set()
        self._unread_task: asyncio.Task[None] | None = None
        self._unread_again = False
        self._pump: asyncio.Task[None] | None = None
        self.chat.on_stored = self._on_stored
        session.add_event_hook(self._on_event)

    @property
    def me(self) -> Person:
        assert self.session.profile is not None
        return person(self.session.profile)

    async def start(self) -> None:
        """After login: follow server events, load the friend list and unread
        counts."""
        self._pump = asyncio.get_running_loop().create_task(self._follow_events())
        await self.roster.refresh()
        self.request_unread()
        await self.files.load()

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
        await self.conversations.close_all()
        if self._unread_task is not None:
            self._unread_task.cancel()
        self.files.close()
        await self.meeting.close()
        await self.chat.close()
        await self.session.close()
        self.avatars.close()
        await asyncio.to_thread(self.store.close)

    # -- events ---------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        """Session hook: runs before chat stores anything, so we know which
        conversations its next batch touches."""
        if isinstance(event, ChatMessage):
            self._dirty.add(event.sender)
            self.conversations.peer_typing(event.sender, False)
            if self.chat.synced.is_set() and not self.conversations.is_viewing(
                event.sender
            ):
                sender = self.roster.person(event.sender)
                self._post(
                    Notice(
                        sender.name if sender else event.sender,
                        event.text[:NOTICE_TEXT_CHARS],
                        peer=event.sender,
                    )
                )
        elif isinstance(event, (Delivered, ReadReceipt)):
            self._dirty.add(event.peer)

    def _on_stored(self, message: LocalMessage | None) -> None:
        if message is not None:
            self.conversations.request_refresh([message.peer])
            self.request_unread()
            return
        self.conversations.request_refresh(self._dirty)
        self._dirty.clear()
        self.request_unread()

    async def _follow_events(self) -> None:
        async for event in self.session.events():
            if isinstance(event, SessionClosed):
                asyncio.get_running_loop().create_task(
                    self._on_ended(self, event.reason, event.message)
                )
                return
            try:
                await self._dispatch(event)
            except ClientError as exc:
                log.warning("handling %s failed: %s", type(event).__name__, exc)

    async def _dispatch(self, event: object) -> None:
        if isinstance(event, TypingChanged):
            self.conversations.peer_typing(event.username, event.typing)
        elif isinstance(event, Disconnected):
            if not event.will_retry:
                asyncio.get_running_loop().create_task(
                    self._on_ended(self, "connection_lost", event.reason)
                )
                return
            self._post(ConnectionState(False, "Connection lost; reconnecting…"))
        elif isinstance(event, Reconnected):
            self._post(ConnectionState(True))
            self.conversations.refresh_all()
            await self.roster.refresh()
            self.request_unread()
            await self.files.refresh_offers()
        elif isinstance(event, Event) and self.roster.apply(event):
            self._notify_friend_event(event)
        elif isinstance(event, Event):
            self.files.on_event(event, self._name_of)

    def _name_of(self, username: str) -> str:
        who = self.roster.person(username)
        return who.name if who is not None else username

    def _notify_friend_event(self, event: Event) -> None:
        if isinstance(event, FriendRequested):
            who = person(event.request.profile)
            self._post(Notice("Friend request", f"{who.name} wants to be friends."))
        elif isinstance(event, FriendAccepted):
            who = person(event.friend.profile)
            self._post(
                Notice("New friend", f"You and {who.name} are friends.", "success")
            )

    # -- unread counts and newest messages ------------------------------------------

    def request_unread(self) -> None:
        """Recount unread messages and find each conversation's newest one,
        soon (coalesced): the drawer shows both."""
        if self._unread_task is not None and not self._unread_task.done():
            self._unread_again = True
            return
        self._unread_task = asyncio.get_running_loop().create_task(self._count())

    async def _count(self) -> None:
        while True:
            self._unread_again = False
            counts = await self.store.run(self.store.unread_counts)
            latest = await self.store.run(self.store.latest_messages)
            self.roster.set_history(counts, latest)
            if not self._unread_again:
                return

    # -- profile ---------------------------------------------------------------

    async def update_profile(self, display_name: str, mood: str) -> Person:
        await self.session.update_profile(display_name=display_name, mood=mood)
        self._post(ProfileUpdated(self.me))
        return self.me

    async def set_presence(self, status: str) -> None:
        await self.friends.set_presence(status)

    async def set_avatar(self, path: Path) -> Person:
        """Upload the picture at ``path`` (shrunk to fit) as our avatar."""
        image = await asyncio.to_thread(prepare_upload, path)
        await self.session.set_avatar(image)
        self._post(ProfileUpdated(self.me))
        return self.me

    async def remove_avatar(self) -> Person:
        profile = self.session.profile
        assert profile is not None
        await self.session.update_profile(avatar_icon=profile.avatar_icon)
        self._post(ProfileUpdated(self.me))
        return self.me

    async def change_password(self, old: str, new: str) -> None:
        await self.session.change_password(old, new)

    # -- people and friends ---------------------------------------------------------

    async def search_people(
        self, prefix: str, after: str | None = None
    ) -> tuple[list[Person], str | None]:
        """One page of users whose names start with ``prefix``, and the cursor."""
        profiles, next_after = await self.session.search(
            prefix.strip().lower(), after=after
        )
        return [person(p) for p in profiles], next_after

    async def request_friend(self, username: str, note: str = "") -> None:
        await self.friends.request(username, note)
        await self.roster.refresh()

    async def respond(self, username: str, accept: bool) -> None:
        if accept:
            await self.friends.accept(username)
        else:
            await self.friends.decline(username)
        await self.roster.refresh()

    async def cancel_request(self, username: str) -> None:
        await self.friends.cancel(username)
        await self.roster.refresh()

    async def remove_friend(self, username: str) -> None:
        await self.friends.remove(username)
        await self.roster.refresh()

    async def block(self, username: str) -> None:
        await self.friends.block(username)
        await self.roster.refresh()

    # -- files --------------------------------------------------------------------

    async def send_file(self, peer: str, path: Path) -> Transfer:
        """Send ``path`` to ``peer``; returns when the server holds it."""
        return await self.files.transfers.send(peer, path)

    async def download(self, file_id: str) -> Transfer:
        """Download a file offered to us into the downloads folder."""
        return await self.files.transfers.download(file_id)

    async def decline_file(self, file_id: str) -> None:
        """Refuse a file offered to us; the sender is told."""
        await self.files.decline(file_id)

    async def pause_transfer(self, transfer_id: int) -> Transfer:
        return await self.files.transfers.pause(transfer_id)

    async def resume_transfer(self, transfer_id: int) -> Transfer:
        """Continue a paused or failed transfer; returns when it ends."""
        return await self.files.transfers.resume(transfer_id)

    async def cancel_transfer(self, transfer_id: int) -> Transfer:
        return await self.files.transfers.cancel(transfer_id)

    def set_downloads(self, folder: Path) -> None:
        self.files.transfers.downloads = folder
