"""Friends and chat on top of a :class:`~client.session.Session`.

:class:`Friends` is a thin typed wrapper over the friend requests. :class:`Chat`
does the reliable part of messaging on the client: every outgoing message is
written to the local store before it is sent and re-sent (with the same
``client_id``) until the server accepts it; every incoming message is stored,
then acknowledged; after each login or reconnect the client tells the server
what it has seen and gets only the rest.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable

from codec.messages import (
    AckMessages,
    BlockUser,
    CancelFriendRequest,
    ChatMessage,
    Delivered,
    Event,
    FriendList,
    ListFriends,
    MarkRead,
    MessageAccepted,
    ReadReceipt,
    RemoveFriend,
    Reply,
    RequestFriend,
    RespondFriend,
    SendMessage,
    SetPresence,
    SyncDone,
    SyncMessages,
    Typing,
    UnblockUser,
)

from .errors import ClientError, ServerError
from .session import Session
from .store import DELIVERED, READ, LocalMessage, LocalStore

__all__ = ["Chat", "Friends", "store_outgoing"]

log = logging.getLogger("quicmeet.chat")


class Friends:
    """Friend requests, friendships, blocks and one's own presence."""

    def __init__(self, session: Session) -> None:
        self.session = session

    async def request(self, username: str, note: str = "") -> None:
        """Ask ``username`` to be friends (they may be offline)."""
        await self.session.call(RequestFriend, Reply, username=username, note=note)

    async def accept(self, username: str) -> None:
        await self.session.call(RespondFriend, Reply, username=username, accept=True)

    async def decline(self, username: str) -> None:
        await self.session.call(RespondFriend, Reply, username=username, accept=False)

    async def cancel(self, username: str) -> None:
        await self.session.call(CancelFriendRequest, Reply, username=username)

    async def remove(self, username: str) -> None:
        await self.session.call(RemoveFriend, Reply, username=username)

    async def block(self, username: str) -> None:
        await self.session.call(BlockUser, Reply, username=username)

    async def unblock(self, username: str) -> None:
        await self.session.call(UnblockUser, Reply, username=username)

    async def list(self) -> FriendList:
        """Friends with profiles and presence, pending requests, blocked names."""
        return await self.session.call(ListFriends, FriendList)

    async def set_presence(self, status: str) -> None:
        """``online`` or ``away``."""
        await self.session.call(SetPresence, Reply, status=status)


async def store_outgoing(
    store: LocalStore, peer: str, text: str, client_id: str | None = None
) -> LocalMessage:
    """Record an outgoing message as pending, before any attempt to send it, so
    that nothing can lose it; :meth:`Chat.deliver` (or the next login) sends it.

    ``client_id`` is the caller's name for the message (a new one when None):
    a message already stored under it is returned, not stored twice."""
    peer = peer.lower()
    if client_id is not None:
        stored = await store.run(store.outgoing_by_client_id, peer, client_id)
        if stored is not None:
            return stored
    return await store.run(
        store.add_outgoing,
        peer,
        client_id or uuid.uuid4().hex,
        text,
        int(time.time() * 1000),
    )


class Chat:
    """Reliable 1:1 messaging with a local history.

    Create it right after the :class:`Session` (before logging in): it hooks
    into the session's events and logins.
    """

    def __init__(self, session: Session, store: LocalStore) -> None:
        self.session = session
        self.store = store
        self.synced = asyncio.Event()
        self.on_stored: Callable[[LocalMessage | None], None] = lambda message: None
        """Called with each outgoing message once it is stored (before it is
        sent), and with None after each batch of incoming events is stored."""
        self._incoming: asyncio.Queue[Event] = asyncio.Queue()
        self._worker = asyncio.get_running_loop().create_task(self._process())
        self._send_lock = asyncio.Lock()
        self._refusals: dict[str, ServerError] = {}
        """Why the server refused a message, by client id, for :meth:`send`."""
        session.add_event_hook(self._on_event)
        session.add_login_hook(self._after_login)

    # -- sending ----------------------------------------------------------------

    async def send(
        self, peer: str, text: str, client_id: str | None = None
    ) -> LocalMessage:
        """Store ``text`` for ``peer`` locally, then send it.

        ``client_id`` names the message (a new one when None): sending it
        again with the same one, after a crash, stores it once and the
        server delivers it once.

        Returns the message as stored after the attempt: state ``sent`` when the
        server accepted it, ``pending`` when the connection is down (it is sent
        after the next reconnect). Raises :class:`ServerError` when the server
        refuses it (the message is then marked ``failed``).
        """
        message = await store_outgoing(self.store, peer, text, client_id)
        self.on_stored(message)
        return await self.deliver(message)

    async def deliver(self, message: LocalMessage) -> LocalMessage:
        """Send ``message`` (stored by :func:`store_outgoing`) with any other
        pending ones; return it as stored after the attempt, as :meth:`send`."""
        await self.flush()
        result = await self.store.run(self.store.get, message.id)
        refusal = self._refusals.pop(message.client_id, None)
        if refusal is not None:
            raise refusal
        return result

    async def flush(self) -> int:
        """Send every pending message, oldest first; return how many were accepted.

        Messages go out pipelined (all requests sent before any reply is awaited)
        and in order; a lost connection leaves the rest pending.
        """
        async with self._send_lock:
            pending = await self.store.run(self.store.pending)
            if not pending:
                return 0
            try:
                proto = await self.session.wait_ready(0)
            except ClientError:
                return 0
            requests = [
                asyncio.ensure_future(
                    proto.request(
                        SendMessage(
                            rid=proto.next_rid(),
                            to=m.peer,
                            client_id=m.client_id,
                            text=m.text,
                        )
                    )
                )
                for m in pending
            ]
            accepted = 0
            for message, request in zip(pending, requests, strict=True):
                try:
                    reply = await request
                except ServerError as exc:
                    self._refusals[message.client_id] = exc
                    await self.store.run(
                        self.store.mark_failed, message.peer, message.client_id
                    )
                    continue
                except ClientError:
                    continue
                assert isinstance(reply, MessageAccepted)
                await self.store.run(
                    self.store.mark_sent,
                    message.peer,
                    message.client_id,
                    reply.seq,
                    reply.sent_ms,
                )
                accepted += 1
            return accepted

    # -- receiving --------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if isinstance(event, (ChatMessage, Delivered, ReadReceipt)):
            self._incoming.put_nowait(event)

    async def _process(self) -> None:
        """Store incoming messages in arrival order, then acknowledge them."""
        while True:
            batch = [await self._incoming.get()]
            while not self._incoming.empty():
                batch.append(self._incoming.get_nowait())
            try:
                await self._handle(batch)
            except Exception:
                log.exception("storing incoming chat events failed")
            finally:
                for _ in batch:
                    self._incoming.task_done()

    async def _handle(self, batch: list[Event]) -> None:
        messages = [
            (e.sender, e.seq, e.client_id, e.text, e.sent_ms)
            for e in batch
            if isinstance(e, ChatMessage)
        ]
        if messages:
            await self.store.run(self.store.add_incoming, messages)
            newest: dict[str, int] = {}
            for sender, seq, *_ in messages:
                newest[sender] = max(newest.get(sender, 0), seq)
            for peer, seq in newest.items():
                try:
                    await self.session.call(
                        AckMessages, Reply, peer=peer, up_to_seq=seq, timeout=10
                    )
                except ClientError as exc:
                    log.debug(
                        "ack to %s not sent (%s); the next sync repeats", peer, exc
                    )
        for event in batch:
            if isinstance(event, Delivered):
                await self.store.run(
                    self.store.advance_state, event.peer, event.up_to_seq, DELIVERED
                )
            elif isinstance(event, ReadReceipt):
                await self.store.run(
                    self.store.advance_state, event.peer, event.up_to_seq, READ
                )
        self.on_stored(None)

    async def drain(self) -> None:
        """Wait until every event received so far is stored."""
        await self._incoming.join()

    async def _after_login(self) -> None:
        self.synced.clear()
        await self.drain()
        seen = await self.store.run(self.store.seen)
        await self.session.call(SyncMessages, SyncDone, seen=seen, timeout=120)
        self.synced.set()
        await self.flush()

    # -- reading --------------------------------------------------------------

    async def history(
        self, peer: str, before_id: int | None = None, limit: int = 50
    ) -> list[LocalMessage]:
        """Local history with ``peer``, oldest first (page back with ``before_id``)."""
        return await self.store.run(self.store.history, peer.lower(), before_id, limit)

    async def search(
        self, text: str, peer: str | None = None, limit: int = 50
    ) -> list[LocalMessage]:
        """Full-text search of the local history, newest first."""
        return await self.store.run(
            self.store.search, text, peer.lower() if peer else None, limit
        )

    async def mark_read(self, peer: str, up_to_seq: int) -> None:
        """Tell ``peer`` we read their messages up to ``up_to_seq``."""
        peer = peer.lower()
        marks = await self.store.run(self.store.get_json, "read_marks", {})
        marks[peer] = max(marks.get(peer, 0), up_to_seq)
        await self.store.run(self.store.set_json, "read_marks", marks)
        await self.session.call(MarkRead, Reply, peer=peer, up_to_seq=up_to_seq)

    async def typing(self, peer: str, typing: bool = True) -> None:
        await self.session.call(Typing, Reply, to=peer, typing=typing)

    async def close(self) -> None:
        self._worker.cancel()
