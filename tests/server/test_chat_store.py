"""The chat store's group commit: a fixed few statements per batch, whatever
its size, so the database thread hands the GIL back and forth with the event
loop a fixed few times per commit (each hand-back can cost the loop's switch
interval)."""

from __future__ import annotations

import asyncio

import pytest

from server import chat_store
from server.chat_store import ChatStore
from server.storage import Storage
from server.storage.models import Conversation, Cursor, Message, User


async def _store(tmp_path, db_url=None) -> tuple[Storage, ChatStore, list[int]]:
    storage = Storage(db_url, tmp_path / "data")
    await storage.start()
    ids = await storage.run(
        lambda: [
            User.create(
                username=f"u{i}", password_hash="x", display_name="", created_ms=0
            ).id
            for i in range(6)
        ]
    )
    return storage, ChatStore(storage), ids


def _count_statements(storage: Storage) -> list[str]:
    statements: list[str] = []
    db = storage.db
    original = db.execute_sql

    def counted(sql, params=None, *args, **kwargs):
        statements.append(sql)
        return original(sql, params, *args, **kwargs)

    db.execute_sql = counted  # type: ignore[method-assign]
    return statements


async def _commit_round(store: ChatStore, ids: list[int], per_pair: int, tag: str):
    """``per_pair`` messages each way between three pairs of users, then a
    delivery ack and a read mark for each direction, all in one batch."""
    futures = []
    for a, b in zip(ids[0::2], ids[1::2], strict=True):
        for n in range(per_pair):
            futures.append(store.send(a, b, f"{tag}-{a}-{n}", f"hello {n}"))
            futures.append(store.send(b, a, f"{tag}-{b}-{n}", f"back {n}"))
        for recipient, sender in ((b, a), (a, b)):
            futures.append(store.advance(recipient, sender, delivered=10**6))
            futures.append(store.advance(recipient, sender, read=per_pair))
    return await asyncio.gather(*futures)


async def _receipts(store: ChatStore, pairs: list[tuple[int, int]]):
    """A delivery ack and a read mark for each direction of ``pairs``, in one
    batch with no message."""
    futures = []
    for a, b in pairs:
        for recipient, sender in ((b, a), (a, b)):
            futures.append(store.advance(recipient, sender, delivered=10**6))
            futures.append(store.advance(recipient, sender, read=10**6))
    return await asyncio.gather(*futures)


@pytest.mark.stores
async def test_a_batch_of_any_size_commits_with_the_same_few_statements(
    tmp_path, db_url
):
    storage, store, ids = await _store(tmp_path, db_url)
    statements = _count_statements(storage)
    store.start()
    try:
        await _commit_round(store, ids, 1, "warm")
        counts = []
        for per_pair in (2, 30):
            statements.clear()
            results = await _commit_round(store, ids, per_pair, f"r{per_pair}")
            assert store.batches and len(results) == 3 * (2 * per_pair + 4)
            counts.append(len(statements))
        # The same statements for 2 or 30 messages each way and 4 receipts
        # per pair (all within one chunk of 200 rows): one for retries, one
        # insert, one update of the conversations, one read and one write of
        # the cursors (on PostgreSQL, shared by nodes, also one to create and
        # one to lock the conversations, and the transaction's own).
        assert counts[0] == counts[1] <= 10, counts
        # Receipts alone, for one conversation or three: on PostgreSQL the
        # conversations are read again for each commit (another node may
        # have moved them), in one statement for all.
        receipts = []
        for pairs in ([(ids[0], ids[1])], list(zip(ids[0::2], ids[1::2], strict=True))):
            statements.clear()
            await _receipts(store, pairs)
            receipts.append(len(statements))
        assert receipts[0] == receipts[1] <= 6, receipts
        cursors = await storage.run(
            lambda: sorted(
                (c.recipient_id, c.sender_id, c.delivered_seq, c.read_seq)
                for c in Cursor.select()
            )
        )
        # Each conversation holds 1 + 2 + 30 messages from each side, 66 in
        # all; delivery and reading are clamped to the last.
        assert [(d, r) for _, _, d, r in cursors] == [(66, 66)] * 6
    finally:
        await store.stop()
        storage.close()


async def test_a_shared_database_batch_waits_for_the_server_five_times(
    tmp_path, postgres, monkeypatch
):
    """On PostgreSQL a batch of messages in conversations that exist sends
    BEGIN, the retries' query, the conversations' lock, the insert with the
    update of their last seq, and COMMIT: each statement is a wait for the
    server and a turn at the GIL for the database thread (before: also a
    statement to create the conversations and one to update them)."""
    storage, store, ids = await _store(tmp_path, postgres.create_database())
    statements = _count_statements(storage)
    store.start()
    try:
        await _commit_round(store, ids, 1, "warm")
        statements.clear()
        pairs = list(zip(ids[0::2], ids[1::2], strict=True))
        sent = [
            store.send(a, b, f"again-{a}-{n}", f"hello {n}")
            for a, b in pairs
            for n in range(3)
        ]
        await asyncio.gather(*sent)
        assert [sql.split()[0] for sql in statements] == ["SELECT", "SELECT", "WITH"]
        # More rows than one statement takes (the retries' query and the
        # insert each in two): the update rides on the last chunk's insert,
        # and the last seq is that of the last message.
        statements.clear()
        many = [store.send(ids[0], ids[1], f"many-{n}", "x") for n in range(250)]
        results = await asyncio.gather(*many)
        assert [sql.split()[0] for sql in statements] == [
            "SELECT",
            "SELECT",
            "SELECT",
            "INSERT",
            "WITH",
        ]
        last = await storage.run(
            lambda: (
                Conversation.get(
                    user_low=min(ids[0], ids[1]), user_high=max(ids[0], ids[1])
                ).last_seq
            )
        )
        assert last == results[-1].seq == results[0].seq + 249
        stored = await storage.run(
            lambda: Message.select().where(Message.client_id.startswith("many")).count()
        )
        assert stored == 250
        more = await store.send(ids[1], ids[0], "after", "y")
        assert more.seq == last + 1
        # Past the conversations it remembers, a node forgets them and
        # creates them again (a no-op in the database), then remembers them.
        monkeypatch.setattr(chat_store, "MAX_KNOWN_CONVERSATIONS", 2)
        await store.send(*pairs[0], "3", "z")  # three known: forgets, learns one
        statements.clear()
        await store.send(*pairs[1], "4", "z")
        assert [sql.split()[0] for sql in statements] == [
            "SELECT",
            "INSERT",
            "SELECT",
            "WITH",
        ]
    finally:
        await store.stop()
        storage.close()
