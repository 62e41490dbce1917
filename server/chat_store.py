"""Durable chat storage with group commit.

Every send, delivery ack and read mark is queued; one writer commits everything
queued so far in a single transaction on the database thread, then resolves the
callers' futures. A message is acknowledged only after that commit, yet a busy
server pays for one commit per batch, not one per message.

The writer also assigns sequence numbers: on the database thread, in queue
order, so the order of a conversation is exactly the order in which the server
accepted its messages.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import peewee

from codec.errors import ErrorCode

from .chat_writes import (
    MessageRow,
    already_stored,
    insert_messages,
    read_conversations,
    read_cursors,
    shared_read,
    shared_rollback,
    shared_write,
    write_cursors,
)
from .errors import ServiceError
from .storage.models import Conversation, Cursor, Message, User
from .timeutil import now_ms

if TYPE_CHECKING:
    from .storage import Storage

__all__ = ["ChatStore", "SendResult"]

log = logging.getLogger("quicmeet.chat")

MAX_BATCH = 2000
MAX_KNOWN_CONVERSATIONS = 100_000
"""Conversations a node remembers as committed (about 100 bytes each); past
that it forgets them all and learns them again, one creation each."""


@dataclass(frozen=True, slots=True)
class SendResult:
    """The committed message: its ``seq`` in the conversation and time (Unix ms)."""

    seq: int
    sent_ms: int
    duplicate: bool


@dataclass(slots=True)
class _Send:
    sender: int
    recipient: int
    client_id: str
    text: str
    future: asyncio.Future[SendResult]


@dataclass(slots=True)
class _Cursor:
    recipient: int
    sender: int
    delivered: int
    read: int
    future: asyncio.Future[tuple[int, int] | None] = field(repr=False)


class ChatStore:
    """Queues chat writes and commits them in batches."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._pending: list[_Send | _Cursor] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conversations: dict[tuple[int, int], list[int]] = {}
        """(low, high) user ids -> [conversation id, last seq]; database thread only."""
        self._shared = isinstance(storage.db, peewee.PostgresqlDatabase)
        """Whether other server nodes may write the same conversations: then each
        transaction locks the rows of the conversations it touches and reads
        their last seq afresh, instead of keeping it between transactions."""
        self._existing: set[tuple[int, int]] = set()
        """(low, high) of the conversations known to be committed: a shared
        database's batch creates only the others (database thread only)."""
        self.batches = 0
        self.committed = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Commit what is queued, then stop."""
        if self._task is None:
            return
        while self._pending:
            self._wakeup.set()
            await asyncio.sleep(0.01)
        self._task.cancel()
        self._task = None

    def send(
        self, sender: int, recipient: int, client_id: str, text: str
    ) -> asyncio.Future[SendResult]:
        """Queue a message; the future resolves once it is committed."""
        future: asyncio.Future[SendResult] = asyncio.get_running_loop().create_future()
        self._pending.append(_Send(sender, recipient, client_id, text, future))
        self._wakeup.set()
        return future

    def advance(
        self, recipient: int, sender: int, delivered: int = 0, read: int = 0
    ) -> asyncio.Future[tuple[int, int] | None]:
        """Move the delivered/read cursors of sender→recipient forward (never back,
        never past the conversation's last message); the future gives the cursors
        (delivered, read) after the commit, or None when the two never chatted."""
        future: asyncio.Future[tuple[int, int] | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending.append(
            _Cursor(recipient, sender, max(delivered, read), read, future)
        )
        self._wakeup.set()
        return future

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                try:
                    results = await self.storage.run(self._commit, batch)
                except Exception as exc:
                    error = _storage_error(exc)
                    for op in batch:
                        if not op.future.done():
                            op.future.set_exception(error)
                    continue
                self.batches += 1
                self.committed += len(batch)
                for op, result in zip(batch, results, strict=True):
                    if not op.future.done():
                        op.future.set_result(result)  # type: ignore[arg-type]

    # -- on the database thread -------------------------------------------------

    def _conversation(self, a: int, b: int) -> list[int]:
        key = _low_high(a, b)
        entry = self._conversations.get(key)
        if entry is None:
            conv, _ = Conversation.get_or_create(user_low=key[0], user_high=key[1])
            entry = [int(conv.id), int(conv.last_seq)]
            self._conversations[key] = entry
        return entry

    def _commit(self, batch: list[_Send | _Cursor]) -> list[object]:
        touched: dict[tuple[int, int], list[int]] = {}
        try:
            if self._shared:
                results = self._commit_shared(batch, touched)
            else:
                with Message._meta.database.atomic():
                    results = self._commit_local(batch, touched)
        except Exception:
            for key in touched:
                self._conversations.pop(key, None)
            raise
        if len(self._existing) + len(touched) > MAX_KNOWN_CONVERSATIONS:
            self._existing.clear()
        self._existing.update(touched)
        return results

    def _commit_local(
        self, batch: list[_Send | _Cursor], touched: dict[tuple[int, int], list[int]]
    ) -> list[object]:
        """A database of this node alone: what it holds of the conversations
        stays true between transactions; a few statements per batch."""
        by_sender, cursor_pairs = _requests(batch)
        existing = already_stored(by_sender)
        cursors = read_cursors(cursor_pairs) if cursor_pairs else {}
        unknown = {
            _low_high(*pair)
            for pair in cursor_pairs
            if _low_high(*pair) not in self._conversations
        }
        if unknown:
            # A cursor only needs the last seq to clamp to: one statement for
            # the batch instead of one per cursor.
            self._conversations.update(read_conversations(unknown))
        rows, moved, results = self._assign(batch, existing, cursors, touched)
        insert_messages(rows, {conv_id: seq for conv_id, seq in touched.values()})
        if moved:
            write_cursors(moved)
        return results

    def _commit_shared(
        self, batch: list[_Send | _Cursor], touched: dict[tuple[int, int], list[int]]
    ) -> list[object]:
        """A database other nodes write too: the batch locks the conversations
        it touches and reads their last seq afresh, in two round trips (each a
        wait for the server and a turn at the GIL for this thread)."""
        self._conversations.clear()
        by_sender, cursor_pairs = _requests(batch)
        messaged = {
            _low_high(op.sender, op.recipient) for op in batch if isinstance(op, _Send)
        }
        try:
            conversations, existing, cursors = shared_read(
                messaged - self._existing,
                messaged | {_low_high(*pair) for pair in cursor_pairs},
                by_sender,
                cursor_pairs,
            )
            self._conversations.update(conversations)
            rows, moved, results = self._assign(batch, existing, cursors, touched)
            shared_write(
                rows, {conv_id: seq for conv_id, seq in touched.values()}, moved
            )
        except Exception:
            try:
                shared_rollback()
            except Exception as exc:  # the connection is gone: nothing to end
                log.warning("chat commit: rollback failed: %s", exc)
            raise
        return results

    def _assign(
        self,
        batch: list[_Send | _Cursor],
        existing: dict[tuple[int, str], tuple[int, int]],
        cursors: dict[tuple[int, int], tuple[int, int]],
        touched: dict[tuple[int, int], list[int]],
    ) -> tuple[list[MessageRow], dict[tuple[int, int], tuple[int, int]], list[object]]:
        """Number the batch's new messages and move its cursors, in queue
        order: the rows to insert, the cursors to write and each op's result."""
        moved: dict[tuple[int, int], tuple[int, int]] = {}
        now = now_ms()
        rows: list[MessageRow] = []
        results: list[object] = []
        for op in batch:
            if isinstance(op, _Cursor):
                results.append(self._advance(op, cursors, moved))
                continue
            key = (op.sender, op.client_id)
            if key in existing:
                seq, sent = existing[key]
                results.append(SendResult(seq, sent, True))
                continue
            conv = self._conversation(op.sender, op.recipient)
            touched[_low_high(op.sender, op.recipient)] = conv
            conv[1] += 1
            existing[key] = (conv[1], now)
            rows.append(
                (conv[0], conv[1], op.sender, op.recipient, op.client_id, op.text, now)
            )
            results.append(SendResult(conv[1], now, False))
        return rows, moved, results

    def _advance(
        self,
        op: _Cursor,
        cursors: dict[tuple[int, int], tuple[int, int]],
        moved: dict[tuple[int, int], tuple[int, int]],
    ) -> tuple[int, int] | None:
        """Move one cursor in ``cursors`` (read for the whole batch), noting in
        ``moved`` what the batch must write; None when the two never chatted."""
        key = _low_high(op.sender, op.recipient)
        entry = self._conversations.get(key)
        if entry is None:
            if self._shared:  # the batch read every conversation it touches
                return None
            conv = Conversation.get_or_none(user_low=key[0], user_high=key[1])
            if conv is None:
                return None
            entry = [int(conv.id), int(conv.last_seq)]
            self._conversations[key] = entry
        last_seq = entry[1]
        pair = (op.recipient, op.sender)
        old_delivered, old_read = cursors.get(pair, (0, 0))
        delivered = max(old_delivered, min(op.delivered, last_seq))
        read = max(old_read, min(op.read, last_seq))
        if pair not in cursors or (delivered, read) != (old_delivered, old_read):
            cursors[pair] = moved[pair] = (delivered, read)
        return delivered, read

    # -- reads and housekeeping (database thread, through Storage.run) -------------

    @staticmethod
    def unseen_for(
        recipient: int,
        seen: dict[int, int],
        after: tuple[int, int] | None,
        limit: int,
    ) -> list[Message]:
        """One page of the messages to ``recipient`` past what it has ``seen`` (per
        sender id), ordered by sender then seq, starting after ``after``
        (sender id, seq)."""
        unseen = Message.sender.not_in(list(seen)) if seen else Message.sender > 0
        for sender, seq in seen.items():
            unseen |= (Message.sender == sender) & (Message.seq > seq)
        cond = (Message.recipient == recipient) & unseen
        if after is not None:
            cond &= (Message.sender > after[0]) | (
                (Message.sender == after[0]) & (Message.seq > after[1])
            )
        query = (
            Message.select(Message, User)
            .join(User, on=Message.sender)
            .where(cond)
            .order_by(Message.sender, Message.seq)
            .limit(limit)
        )
        return list(query)

    @staticmethod
    def purge(retention_ms: int) -> int:
        """Delete delivered messages older than the retention; return how many."""
        cutoff = now_ms() - retention_ms
        delivered = Cursor.select(Cursor.delivered_seq).where(
            (Cursor.recipient == Message.recipient) & (Cursor.sender == Message.sender)
        )
        return int(
            Message.delete()
            .where((Message.sent_ms < cutoff) & (Message.seq <= delivered))
            .execute()
        )


def _low_high(a: int, b: int) -> tuple[int, int]:
    """The key of the conversation of users ``a`` and ``b``: (low, high) id."""
    return (a, b) if a < b else (b, a)


def _requests(
    batch: list[_Send | _Cursor],
) -> tuple[dict[int, set[str]], set[tuple[int, int]]]:
    """What a batch must read: the client ids of its messages by sender (to
    find retries) and the (recipient, sender) of its cursors."""
    by_sender: dict[int, set[str]] = {}
    cursor_pairs: set[tuple[int, int]] = set()
    for op in batch:
        if isinstance(op, _Send):
            by_sender.setdefault(op.sender, set()).add(op.client_id)
        else:
            cursor_pairs.add((op.recipient, op.sender))
    return by_sender, cursor_pairs


def _storage_error(exc: Exception) -> ServiceError:
    text = str(exc).lower()
    if isinstance(exc, peewee.OperationalError) and "full" in text:
        log.error("chat storage is full: %s", exc)
        return ServiceError(ErrorCode.STORAGE_FULL, "the server's storage is full")
    log.exception("chat commit failed", exc_info=exc)
    return ServiceError(ErrorCode.INTERNAL, "could not store the message")
