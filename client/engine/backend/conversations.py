"""Open chat windows as the backend sees them: which messages each one shows,
what changed since, read marks, and typing indicators both ways.

Each open conversation remembers the messages it was given (id, state, seq);
a refresh reloads everything from the oldest one shown and posts only what is
new or changed, so delivery ticks and late arrivals reach the window without
the window knowing any rule about them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from codec.messages.social import MAX_MESSAGE_BYTES

from ...errors import ClientError
from ...social import Chat
from ...store import LocalMessage, LocalStore
from ..model import ConversationUpdate, PeerTyping, UiEvent

__all__ = ["Conversations"]

log = logging.getLogger("quicmeet.engine.conversations")

PAGE = 50
"""Messages per page of history."""
TYPING_RESEND_S = 3.0
"""While we keep typing, tell the peer again this often."""
TYPING_IDLE_S = 4.0
"""After this long without a key press we tell the peer we stopped."""
TYPING_EXPIRE_S = 6.0
"""A peer's typing indicator goes away after this long without news."""


@dataclass
class _Open:
    shown: dict[int, tuple[str, int | None]] = field(default_factory=dict)
    viewing: bool = False

    @property
    def oldest_id(self) -> int | None:
        return min(self.shown) if self.shown else None


def _newest_incoming(messages: Iterable[LocalMessage]) -> int:
    return max((m.seq or 0 for m in messages if not m.outgoing), default=0)


class Conversations:
    """The conversations shown in chat windows, on the loop thread."""

    def __init__(
        self,
        chat: Chat,
        store: LocalStore,
        post: Callable[[UiEvent], None],
        on_read: Callable[[], None],
    ) -> None:
        self._chat = chat
        self._store = store
        self._post = post
        self._on_read = on_read
        self._open: dict[str, _Open] = {}
        self._lock = asyncio.Lock()
        self._dirty: set[str] = set()
        self._refresher: asyncio.Task[None] | None = None
        self._read_marks: dict[str, int] | None = None
        self._typing_since: dict[str, float] = {}
        self._typing_idle: dict[str, asyncio.TimerHandle] = {}
        self._peer_typing: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- windows ---------------------------------------------------------------

    async def open(self, peer: str, viewing: bool = True) -> None:
        """Show the newest page of the conversation with ``peer``; ``viewing``:
        the window is in front of the user (see :meth:`set_viewing`)."""
        state = self._open.setdefault(peer, _Open())
        state.viewing = viewing
        async with self._lock:
            page = await self._chat.history(peer, None, PAGE)
            state.shown = {m.id: (m.state, m.seq) for m in page}
            self._post(
                ConversationUpdate(
                    peer, tuple(page), reset=True, has_more=len(page) == PAGE
                )
            )
            if state.viewing:
                await self._mark_read(peer, _newest_incoming(page))

    async def close(self, peer: str) -> None:
        self._open.pop(peer, None)

    async def older(self, peer: str) -> bool:
        """Post the page before the oldest message shown; False if there is none."""
        async with self._lock:
            state = self._open.get(peer)
            if state is None or state.oldest_id is None:
                return False
            page = await self._chat.history(peer, state.oldest_id, PAGE)
            state.shown.update({m.id: (m.state, m.seq) for m in page})
            self._post(
                ConversationUpdate(
                    peer, tuple(page), older=True, has_more=len(page) == PAGE
                )
            )
            return len(page) == PAGE

    async def load_until(self, peer: str, message_id: int) -> None:
        """Page back until the message ``message_id`` is shown."""
        while True:
            state = self._open.get(peer)
            if state is None or state.oldest_id is None:
                return
            if state.oldest_id <= message_id or not await self.older(peer):
                return

    def is_viewing(self, peer: str) -> bool:
        state = self._open.get(peer)
        return state is not None and state.viewing

    async def set_viewing(self, peer: str, viewing: bool) -> None:
        """The window is (not) in front of the user: what it shows counts as read."""
        state = self._open.get(peer)
        if state is None:
            return
        state.viewing = viewing
        if viewing:
            self.request_refresh([peer])

    # -- refreshing -------------------------------------------------------------

    def request_refresh(self, peers: Iterable[str]) -> None:
        """Re-read the open conversations among ``peers`` soon (coalesced)."""
        self._dirty.update(p for p in peers if p in self._open)
        if self._dirty and (self._refresher is None or self._refresher.done()):
            self._refresher = self._spawn(self._refresh_dirty())

    def refresh_all(self) -> None:
        self.request_refresh(list(self._open))

    async def _refresh_dirty(self) -> None:
        while self._dirty:
            peer = self._dirty.pop()
            async with self._lock:
                await self._refresh(peer)

    async def _refresh(self, peer: str) -> None:
        state = self._open.get(peer)
        if state is None:
            return
        oldest = state.oldest_id
        messages = await self._store.run(self._since, peer, oldest)
        changed = [m for m in messages if state.shown.get(m.id) != (m.state, m.seq)]
        if changed:
            state.shown.update({m.id: (m.state, m.seq) for m in changed})
            self._post(ConversationUpdate(peer, tuple(changed)))
        if state.viewing:
            await self._mark_read(peer, _newest_incoming(messages))

    def _since(self, peer: str, oldest_id: int | None) -> list[LocalMessage]:
        """Every message with ``peer`` from ``oldest_id`` on (store thread)."""
        if oldest_id is None:
            return self._store.history(peer, None, PAGE)
        found: list[LocalMessage] = []
        before: int | None = None
        while True:
            page = self._store.history(peer, before, PAGE * 4)
            found[:0] = [m for m in page if m.id >= oldest_id]
            if not page or page[0].id <= oldest_id or len(page) < PAGE * 4:
                return found
            before = page[0].id

    async def _mark_read(self, peer: str, up_to_seq: int) -> None:
        if self._read_marks is None:
            self._read_marks = dict(
                await self._store.run(self._store.get_json, "read_marks", {})
            )
        if up_to_seq <= self._read_marks.get(peer, 0):
            return
        self._read_marks[peer] = up_to_seq
        try:
            await self._chat.mark_read(peer, up_to_seq)
        except ClientError as exc:
            log.info("read receipt to %s not sent: %s", peer, exc)
        self._on_read()

    # -- sending and searching ---------------------------------------------------

    async def send(
        self, peer: str, text: str, client_id: str | None = None
    ) -> LocalMessage:
        """Send ``text`` to ``peer``; the window hears of it through updates.
        The same ``client_id`` again stores and sends it only once."""
        size = len(text.encode())
        if size > MAX_MESSAGE_BYTES:
            raise ClientError(
                f"the message is {size} bytes; at most {MAX_MESSAGE_BYTES} fit"
            )
        self._stop_typing(peer)
        try:
            return await self._chat.send(peer, text, client_id)
        finally:
            self.request_refresh([peer])

    async def search(self, peer: str, text: str) -> list[LocalMessage]:
        """Messages with ``peer`` containing the words of ``text``, newest first."""
        return await self._chat.search(text, peer)

    # -- typing ---------------------------------------------------------------

    def user_typing(self, peer: str) -> None:
        """The user pressed a key in the composer for ``peer``."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now - self._typing_since.get(peer, -TYPING_RESEND_S) >= TYPING_RESEND_S:
            self._typing_since[peer] = now
            self._spawn(self._send_typing(peer, True))
        idle = self._typing_idle.pop(peer, None)
        if idle is not None:
            idle.cancel()
        self._typing_idle[peer] = loop.call_later(
            TYPING_IDLE_S, self._stop_typing, peer
        )

    def _stop_typing(self, peer: str) -> None:
        idle = self._typing_idle.pop(peer, None)
        if idle is not None:
            idle.cancel()
        if self._typing_since.pop(peer, None) is not None:
            self._spawn(self._send_typing(peer, False))

    async def _send_typing(self, peer: str, typing: bool) -> None:
        try:
            await self._chat.typing(peer, typing)
        except ClientError as exc:
            log.debug("typing notice to %s not sent: %s", peer, exc)

    def peer_typing(self, peer: str, typing: bool) -> None:
        """``peer`` told us they started or stopped typing."""
        expiry = self._peer_typing.pop(peer, None)
        if expiry is not None:
            expiry.cancel()
        if typing:
            self._peer_typing[peer] = asyncio.get_running_loop().call_later(
                TYPING_EXPIRE_S, self.peer_typing, peer, False
            )
        if typing or expiry is not None:
            self._post(PeerTyping(peer, typing))

    # -- lifecycle ---------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close_all(self) -> None:
        for handle in [*self._typing_idle.values(), *self._peer_typing.values()]:
            handle.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._open.clear()
