"""1:1 chat between friends: store and forward, exactly once, in order.

A message is acknowledged to its sender only after it is committed
(:class:`ChatStore`), pushed at once to an online recipient whose connection has
synced, and otherwise delivered by ``SyncMessages`` at the recipient's next
login. Retries with the same ``client_id`` never create a second message.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from codec.errors import ErrorCode
from codec.messages import (
    AckMessages,
    ChatMessage,
    Delivered,
    MarkRead,
    MessageAccepted,
    Ok,
    ReadReceipt,
    SendMessage,
    SyncDone,
    SyncMessages,
    Typing,
    TypingChanged,
)
from codec.messages.social import MAX_MESSAGE_BYTES

from .chat_store import ChatStore, SendResult
from .cluster import RemoteUser
from .errors import ServiceError
from .storage.models import Cursor, User
from .storage.prepared import Prepared
from .throttle import TokenBucket

if TYPE_CHECKING:
    from .connection import Account, ClientConnection
    from .context import ServerContext
    from .router import Router
    from .social import SocialService

__all__ = ["ChatService"]

log = logging.getLogger("quicmeet.chat")

SYNC_PAGE = 500
PURGE_INTERVAL = 3600.0


class ChatService:
    """Handles the chat requests of :mod:`codec.messages.social`."""

    def __init__(self, ctx: ServerContext, social: SocialService) -> None:
        self.ctx = ctx
        self.social = social
        self.store = ChatStore(ctx.storage)
        self._synced: weakref.WeakSet[ClientConnection] = weakref.WeakSet()
        self._syncing: weakref.WeakKeyDictionary[
            ClientConnection, list[ChatMessage | Delivered | ReadReceipt]
        ] = weakref.WeakKeyDictionary()
        """Live events held back while a connection syncs, sent right after."""
        self._pushed: weakref.WeakKeyDictionary[ClientConnection, dict[str, int]] = (
            weakref.WeakKeyDictionary()
        )
        """For each synced connection: the newest seq it has been sent, by sender.
        A live message past the next one means some went missing on the way (a
        node died between committing them and routing them here): the
        connection then catches up from the database, in order."""
        self._buckets: dict[int, TokenBucket] = {}
        self._purger: asyncio.Task[None] | None = None

    def register_handlers(self, router: Router) -> None:
        router.handle(SendMessage, self.send, pipelined=True)
        router.handle(AckMessages, self.ack)
        router.handle(MarkRead, self.mark_read)
        router.handle(Typing, self.typing)
        router.handle(SyncMessages, self.sync)
        self.ctx.sessions.on_session(None, self._session_ended)

    def start(self) -> None:
        self.store.start()
        self._purger = asyncio.get_running_loop().create_task(self._purge_loop())

    async def stop(self) -> None:
        if self._purger is not None:
            self._purger.cancel()
        await self.store.stop()

    async def _purge_loop(self) -> None:
        retention_ms = int(self.ctx.config.retention_days * 86_400_000)
        while True:
            try:
                removed = await self.ctx.storage.run(ChatStore.purge, retention_ms)
            except Exception:
                log.exception("purging old messages failed")
            else:
                if removed:
                    log.info("purged %d delivered messages past retention", removed)
            await asyncio.sleep(PURGE_INTERVAL)

    def _session_ended(self, conn: ClientConnection, account: Account) -> None:
        self._synced.discard(conn)
        self._syncing.pop(conn, None)
        self._pushed.pop(conn, None)
        self._buckets.pop(account.user_id, None)

    def _friend_id(self, account: Account, username: str) -> int:
        return self.social.friend_id(account.user_id, username, "only friends chat")

    def deliver(
        self, user_id: int, event: ChatMessage | Delivered | ReadReceipt
    ) -> None:
        """Push ``event`` to the user now if their connection has synced, hold it
        while it syncs, route it to the node that holds the user."""
        conn = self.ctx.presence.connection(user_id)
        if conn is None:
            return
        if isinstance(conn, RemoteUser):
            conn.push(event)
        elif conn in self._synced:
            pushed = self._pushed.get(conn)
            if isinstance(event, ChatMessage) and pushed is not None:
                last = pushed.get(event.sender)
                if last is not None and event.seq > last + 1:
                    self._catch_up_later(conn, event)
                    return
                if last is None or event.seq > last:
                    pushed[event.sender] = event.seq
            conn.push(event)
        else:
            held = self._syncing.get(conn)
            if held is not None:
                held.append(event)

    # -- requests -------------------------------------------------------------

    def send(
        self, conn: ClientConnection, req: SendMessage
    ) -> Awaitable[MessageAccepted]:
        """Pipelined: check and queue the write now, in arrival order (which fixes
        the message's place in the conversation); the reply waits for the commit."""
        account = conn.account
        assert account is not None
        recipient = self._friend_id(account, req.to)
        if len(req.text.encode("utf-8")) > MAX_MESSAGE_BYTES:
            raise ServiceError(ErrorCode.TOO_LARGE, "a message may be at most 8 KiB")
        if not req.text.strip():
            raise ServiceError(ErrorCode.INVALID_ARGUMENT, "the message is empty")
        if "\x00" in req.text or "\x00" in req.client_id:
            # PostgreSQL's text cannot hold NUL, and one message that fails
            # would fail its whole batch: refused here, on every database.
            raise ServiceError(
                ErrorCode.INVALID_ARGUMENT, "a message may not contain NUL characters"
            )
        bucket = self._buckets.get(account.user_id)
        now = self.ctx.clock.monotonic()
        if bucket is None:
            config = self.ctx.config
            bucket = TokenBucket(config.chat_rate, config.chat_burst, now)
            self._buckets[account.user_id] = bucket
        if not bucket.take(now):
            raise ServiceError(
                ErrorCode.RATE_LIMITED,
                "sending too fast",
                int(bucket.wait_time(now) * 1000) + 1,
            )
        committed = self.store.send(account.user_id, recipient, req.client_id, req.text)
        # A future, not a coroutine: a request whose task is cancelled before
        # it starts (its connection or the server stopping) leaves nothing
        # behind that was never awaited.
        accepted: asyncio.Future[MessageAccepted] = committed.get_loop().create_future()
        committed.add_done_callback(
            lambda done: self._sent(account, recipient, req, done, accepted)
        )
        return accepted

    def _sent(
        self,
        account: Account,
        recipient: int,
        req: SendMessage,
        committed: asyncio.Future[SendResult],
        accepted: asyncio.Future[MessageAccepted],
    ) -> None:
        if accepted.done():
            return  # given up on (cancelled)
        if committed.cancelled():
            accepted.cancel()
            return
        error = committed.exception()
        if error is not None:
            accepted.set_exception(error)
            return
        try:
            accepted.set_result(
                self._accepted(account, recipient, req, committed.result())
            )
        except Exception as exc:  # a bug: the request still gets its Error reply
            accepted.set_exception(exc)

    def _accepted(
        self, account: Account, recipient: int, req: SendMessage, result: SendResult
    ) -> MessageAccepted:
        """Deliver a committed message and build its sender's reply."""
        # The sender knows the conversation up to its own message's seq, so a
        # reply after it is no gap (both directions share one sequence).
        own = self.ctx.presence.local_connection(account.user_id)
        pushed = self._pushed.get(own) if own is not None else None
        if pushed is not None:
            peer = req.to.lower()
            pushed[peer] = max(pushed.get(peer, 0), result.seq)
        # A retry is delivered again too: the node that first stored it may have
        # died before passing it on (the recipient drops what it already has).
        self.deliver(
            recipient,
            ChatMessage(
                sender=account.username,
                seq=result.seq,
                client_id=req.client_id,
                text=req.text,
                sent_ms=result.sent_ms,
            ),
        )
        return MessageAccepted(
            rid=req.rid,
            client_id=req.client_id,
            seq=result.seq,
            sent_ms=result.sent_ms,
            duplicate=result.duplicate,
        )

    async def _peer_id(self, account: Account, username: str) -> int:
        """A friend's id, or (for receipts of an ex-friend's messages) any user's;
        :meth:`_receipt` refuses users the caller never chatted with."""
        name = username.lower()
        for friend_id, friend_name in self.social.friends_of.get(
            account.user_id, {}
        ).items():
            if friend_name == name:
                return friend_id
        user = await self.ctx.storage.run(
            lambda: User.get_or_none(User.username == name)
        )
        if user is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"no user {username!r}")
        return int(user.id)

    async def _receipt(
        self, account: Account, peer: str, delivered: int = 0, read: int = 0
    ) -> tuple[int, int, int]:
        """Advance the cursors of ``peer``'s messages to ``account``; return the
        peer's id and the cursors. Only someone ``peer`` wrote to may do so."""
        sender = await self._peer_id(account, peer)
        cursors = await self.store.advance(account.user_id, sender, delivered, read)
        if cursors is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"no conversation with {peer!r}")
        return sender, cursors[0], cursors[1]

    async def ack(self, conn: ClientConnection, req: AckMessages) -> Ok:
        account = conn.account
        assert account is not None
        sender, delivered, _ = await self._receipt(
            account, req.peer, delivered=req.up_to_seq
        )
        self.deliver(sender, Delivered(peer=account.username, up_to_seq=delivered))
        return Ok(rid=req.rid)

    async def mark_read(self, conn: ClientConnection, req: MarkRead) -> Ok:
        account = conn.account
        assert account is not None
        sender, _, read = await self._receipt(account, req.peer, read=req.up_to_seq)
        self.deliver(sender, ReadReceipt(peer=account.username, up_to_seq=read))
        return Ok(rid=req.rid)

    async def typing(self, conn: ClientConnection, req: Typing) -> Ok:
        account = conn.account
        assert account is not None
        friend = self._friend_id(account, req.to)
        target = self.ctx.presence.connection(friend)
        if target is not None:
            target.push(TypingChanged(username=account.username, typing=req.typing))
        return Ok(rid=req.rid)

    async def sync(self, conn: ClientConnection, req: SyncMessages) -> SyncDone:
        """Send the messages the client lacks, in order, then let live ones flow."""
        account = conn.account
        assert account is not None
        names = {name.lower() for name in req.seen}
        by_name = await self.ctx.storage.run(_user_ids, names)
        seen = {
            by_name[name.lower()]: seq
            for name, seq in req.seen.items()
            if name.lower() in by_name
        }
        count = await self._catch_up(conn, account, seen, req.seen)
        return SyncDone(rid=req.rid, count=count)

    def _catch_up_later(self, conn: ClientConnection, event: ChatMessage) -> None:
        """Hold ``event`` and send what is missing before it from the database."""
        account = conn.account
        pushed = self._pushed.get(conn)
        if account is None or pushed is None:
            return
        self._synced.discard(conn)
        self._syncing[conn] = [event]
        self.ctx.stats["chat_gaps_filled"] += 1

        async def run() -> None:
            names = {name: seq for name, seq in pushed.items()}
            by_name = await self.ctx.storage.run(_user_ids, set(names))
            seen = {
                by_name[name]: seq for name, seq in names.items() if name in by_name
            }
            try:
                await self._catch_up(conn, account, seen, names)
            except ServiceError:
                pass  # the session ended meanwhile

        asyncio.get_running_loop().create_task(run())

    async def _catch_up(
        self,
        conn: ClientConnection,
        account: Account,
        seen: dict[int, int],
        seen_names: dict[str, int],
    ) -> int:
        """Send ``conn`` the messages past ``seen`` (seq by sender id), in order,
        then the live events held meanwhile; return how many were stored ones."""
        me = account.user_id
        self._synced.discard(conn)
        self._syncing.setdefault(conn, [])
        newest = {name.lower(): seq for name, seq in seen_names.items()}
        count = 0
        after: tuple[int, int] | None = None
        while True:
            page = await self.ctx.storage.run(
                ChatStore.unseen_for, me, seen, after, SYNC_PAGE
            )
            if conn.account is not account:
                raise ServiceError(ErrorCode.NOT_AUTHENTICATED, "session ended")
            for message in page:
                newest[message.sender.username] = message.seq
                conn.push(
                    ChatMessage(
                        sender=message.sender.username,
                        seq=message.seq,
                        client_id=message.client_id,
                        text=message.text,
                        sent_ms=message.sent_ms,
                    )
                )
            count += len(page)
            if len(page) < SYNC_PAGE:
                break
            after = (page[-1].sender_id, page[-1].seq)
            await asyncio.sleep(0)
        cursors = await self.ctx.storage.run(_CURSORS_OF, me)
        for cursor in cursors:
            peer = cursor.recipient.username
            if cursor.delivered_seq:
                conn.push(Delivered(peer=peer, up_to_seq=cursor.delivered_seq))
            if cursor.read_seq:
                conn.push(ReadReceipt(peer=peer, up_to_seq=cursor.read_seq))
        for event in self._syncing.pop(conn, []):
            if isinstance(event, ChatMessage):
                if event.seq <= newest.get(event.sender, 0):
                    continue
                newest[event.sender] = event.seq
            conn.push(event)
        self._pushed[conn] = newest
        self._synced.add(conn)
        return count


_CURSORS_OF = Prepared(
    lambda sender: (
        Cursor.select(Cursor, User)
        .join(User, on=Cursor.recipient)
        .where(Cursor.sender == sender)
    ),
    int,
)
"""How far each peer has received and read what a user sent (every login)."""


def _user_ids(names: set[str]) -> dict[str, int]:
    """Username -> id of the users named (database thread)."""
    if not names:
        return {}
    query = User.select(User.id, User.username).where(User.username.in_(list(names)))
    return {u.username: u.id for u in query}
