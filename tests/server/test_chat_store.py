"""The chat store's group commit: a fixed few statements per batch, whatever
its size, so the database thread hands the GIL back and forth with the event
loop a fixed few times per commit (each hand-back can cost the loop's switch
interval)."""

from __future__ import annotations

import asyncio

import pytest

from codec.errors import ErrorCode
from server import chat_store
from server.chat_store import ChatStore
from server.errors import ServiceError
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


def _count_round_trips(monkeypatch) -> list[str]:
    """The query strings the chat store sends to PostgreSQL (from the event
    loop, on its own connection), one per round trip."""
    import psycopg

    sent: list[str] = []
    original = psycopg.AsyncCursor.execute

    async def counted(self, query, params=None, **kwargs):
        sent.append(query.decode() if isinstance(query, bytes) else query)
        return await original(self, query, params, **kwargs)

    monkeypatch.setattr(psycopg.AsyncCursor, "execute", counted)
    return sent


def _shapes(round_trips: list[str]) -> list[list[str]]:
    """The first word of each statement of each round trip."""
    return [
        [statement.split()[0] for statement in query.split("; ")]
        for query in round_trips
    ]


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
    tmp_path, db_url, monkeypatch
):
    storage, store, ids = await _store(tmp_path, db_url)
    shared = db_url is not None and db_url.startswith("postgresql")
    # SQLite: statements; PostgreSQL: round trips (several statements each).
    statements = (
        _count_round_trips(monkeypatch) if shared else _count_statements(storage)
    )
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
        # the cursors; on PostgreSQL, shared by nodes, two round trips.
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
        if shared:
            assert counts == receipts == [2, 2]
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


async def test_a_shared_database_batch_waits_for_the_server_twice(
    tmp_path, postgres, monkeypatch
):
    """On PostgreSQL a batch is two round trips, whatever it holds: BEGIN with
    the conversations' lock and the reads (retries, cursors), then the writes
    with COMMIT. Each round trip is a wait for the server and a turn at the
    GIL for the database thread (before: five to seven, one per statement)."""
    storage, store, ids = await _store(tmp_path, postgres.create_database())
    round_trips = _count_round_trips(monkeypatch)
    store.start()
    try:
        await _commit_round(store, ids, 1, "warm")
        round_trips.clear()
        pairs = list(zip(ids[0::2], ids[1::2], strict=True))
        sent = [
            store.send(a, b, f"again-{a}-{n}", f"hello {n}")
            for a, b in pairs
            for n in range(3)
        ]
        await asyncio.gather(*sent)
        assert _shapes(round_trips) == [
            ["BEGIN", "WITH"],
            ["INSERT", "UPDATE", "COMMIT"],
        ]
        # Messages, receipts and retries in one batch: still two.
        round_trips.clear()
        mixed = [store.send(a, b, f"mixed-{a}", "new") for a, b in pairs]
        mixed += [store.advance(b, a, delivered=10**6) for a, b in pairs]
        mixed += [store.send(a, b, f"again-{a}-0", "retried") for a, b in pairs]
        results = await asyncio.gather(*mixed)
        assert [r.duplicate for r in results[:3] + results[6:]] == [False] * 3 + [
            True
        ] * 3
        assert _shapes(round_trips) == [
            ["BEGIN", "WITH"],
            ["INSERT", "UPDATE", "INSERT", "COMMIT"],
        ]
        # More rows than one statement takes: the insert in two statements, in
        # the same round trip; the last seq is that of the last message.
        round_trips.clear()
        many = [store.send(ids[0], ids[1], f"many-{n}", "x") for n in range(250)]
        results = await asyncio.gather(*many)
        assert _shapes(round_trips) == [
            ["BEGIN", "WITH"],
            ["INSERT", "INSERT", "UPDATE", "COMMIT"],
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
        # creates them again (a no-op in the database) in the first round
        # trip, then remembers them.
        monkeypatch.setattr(chat_store, "MAX_KNOWN_CONVERSATIONS", 2)
        await store.send(*pairs[0], "3", "z")  # three known: forgets, learns one
        round_trips.clear()
        await store.send(*pairs[1], "4", "z")
        assert _shapes(round_trips) == [
            ["BEGIN", "INSERT", "WITH"],
            ["INSERT", "UPDATE", "COMMIT"],
        ]
    finally:
        await store.stop()
        storage.close()


@pytest.mark.stores
async def test_a_failed_batch_writes_nothing_and_the_next_one_commits(tmp_path, db_url):
    """A batch that fails in its writes (here a row in the way of the next
    seq) fails each of its callers with a clear error and leaves nothing
    behind: not its messages, not its cursors; the transaction is ended, so
    the next batch commits (on PostgreSQL the connection stays usable)."""
    storage, store, ids = await _store(tmp_path, db_url)
    a, b = ids[0], ids[1]
    store.start()
    try:
        first = await store.send(a, b, "first", "hello")
        conv_id = await storage.run(
            lambda: Conversation.get(user_low=min(a, b), user_high=max(a, b)).id
        )
        in_the_way = await storage.run(
            lambda: (
                Message.create(
                    conversation=conv_id,
                    seq=first.seq + 1,
                    sender=b,
                    recipient=a,
                    client_id="in-the-way",
                    text="x",
                    sent_ms=0,
                ).id
            )
        )
        failing = [
            store.send(a, b, "second", "lost?"),
            store.advance(a, b, delivered=first.seq, read=first.seq),
        ]
        outcomes = await asyncio.gather(*failing, return_exceptions=True)
        assert all(isinstance(o, ServiceError) for o in outcomes), outcomes
        assert {o.code for o in outcomes} == {ErrorCode.INTERNAL}
        assert await storage.run(lambda: Cursor.select().count()) == 0
        assert (
            await storage.run(
                lambda: Message.select().where(Message.client_id == "second").count()
            )
            == 0
        )
        await storage.run(lambda: Message.delete_by_id(in_the_way))
        again = await asyncio.gather(
            store.send(a, b, "second", "again"),
            store.advance(a, b, delivered=first.seq, read=first.seq),
        )
        assert again[0].seq == first.seq + 1 and not again[0].duplicate
        assert again[1] == (first.seq, first.seq)
    finally:
        await store.stop()
        storage.close()


async def test_texts_reach_postgresql_exactly_as_sent(tmp_path, postgres):
    """The shared store writes each parameter into the query text itself
    (``chat_shared.bind``): quotes, backslashes, percent signs (a
    placeholder's own spelling too), SQL, comment marks, newlines and
    characters beyond ASCII are stored as sent, in texts and in client ids,
    and a retry of each is found. What ``bind`` makes of a query is what
    psycopg's own client-side binding makes of it."""
    from psycopg._queries import PostgresClientQuery
    from psycopg.adapt import Transformer

    from server.chat_shared import bind

    texts = [
        "it's",
        'say "hi"',
        "back\\slash \\'",
        "100% %s %%s %(x)s",
        "'); DROP TABLE message; --",
        "-- not a comment",
        "line\nbreak\ttab",
        "ünïcødé ✓ 🎉",
        "",
    ]
    storage, store, ids = await _store(tmp_path, postgres.create_database())
    a, b = ids[0], ids[1]
    store.start()
    try:
        sends = [store.send(a, b, f"{text}#{n}", text) for n, text in enumerate(texts)]
        first = await asyncio.gather(*sends)
        assert not any(r.duplicate for r in first)
        stored = await storage.run(
            lambda: {m.client_id: m.text for m in Message.select()}
        )
        assert stored == {f"{text}#{n}": text for n, text in enumerate(texts)}
        again = await asyncio.gather(
            *[store.send(a, b, f"{text}#{n}", "x") for n, text in enumerate(texts)]
        )
        assert [(r.seq, r.duplicate) for r in again] == [(r.seq, True) for r in first]

        connection = store._shared_db._connection
        literals = Transformer.from_context(connection)
        query = "SELECT %s, %s, %s, %s, %s, %s, %s - %s"
        params = [*texts[:4], None, 2**63, 0, -5]
        theirs = PostgresClientQuery(Transformer.from_context(connection))
        theirs.convert(query, params)
        assert bind(query, params, literals) == theirs.query
        cursor = connection.cursor()
        await cursor.execute(bind(query, params, literals))
        assert await cursor.fetchone() == (*texts[:4], None, 2**63, 5)
    finally:
        await store.stop()
        storage.close()


async def test_a_batch_whose_database_connection_broke_commits_on_a_new_one(
    tmp_path, postgres, caplog
):
    """PostgreSQL ends the chat store's connection between two batches (a
    restart, an administrator, a network cut): the next batch finds it
    broken, opens another and commits, exactly once."""
    storage, store, ids = await _store(tmp_path, postgres.create_database())
    a, b = ids[0], ids[1]
    store.start()
    try:
        first = await store.send(a, b, "first", "hello")
        pid = store._shared_db._connection.info.backend_pid
        await storage.run(
            lambda: storage.db.execute_sql("SELECT pg_terminate_backend(%s)", [pid])
        )
        second = await store.send(a, b, "second", "still there?")
        assert (second.seq, second.duplicate) == (first.seq + 1, False)
        assert store._shared_db._connection.info.backend_pid != pid
        assert "the database connection broke" in caplog.text
        stored = await storage.run(
            lambda: [m.client_id for m in Message.select().order_by(Message.seq)]
        )
        assert stored == ["first", "second"]
    finally:
        await store.stop()
        storage.close()


async def test_a_database_that_stops_answering_fails_the_batch_in_time(
    tmp_path, postgres, monkeypatch
):
    """A round trip that PostgreSQL does not answer (here: the conversations
    locked by another session) fails its batch after the round trip's
    timeout with a clear BUSY error, instead of holding every later
    message; the connection is dropped, and once the database answers
    again the next batch commits on a new one."""
    from server import chat_shared

    monkeypatch.setattr(chat_shared, "ROUND_TRIP_TIMEOUT_S", 0.5)
    url = postgres.create_database()
    storage, store, ids = await _store(tmp_path, url)
    a, b = ids[0], ids[1]
    store.start()
    blocker = None
    try:
        await store.send(a, b, "first", "hello")
        import psycopg

        blocker = await psycopg.AsyncConnection.connect(url, autocommit=True)
        await blocker.execute("BEGIN")
        await blocker.execute('LOCK TABLE "conversation" IN ACCESS EXCLUSIVE MODE')
        started = asyncio.get_running_loop().time()
        with pytest.raises(ServiceError) as info:
            await store.send(a, b, "second", "stuck?")
        waited = asyncio.get_running_loop().time() - started
        assert info.value.code == ErrorCode.BUSY and info.value.retry_after_ms
        assert 0.4 < waited < 5.0
        await blocker.execute("ROLLBACK")
        again = await store.send(a, b, "second", "again")
        assert not again.duplicate
        stored = await storage.run(
            lambda: [m.client_id for m in Message.select().order_by(Message.seq)]
        )
        assert stored == ["first", "second"]
    finally:
        if blocker is not None:
            await blocker.close()
        await store.stop()
        storage.close()


async def test_a_conversation_deleted_behind_the_nodes_back_is_created_again(
    tmp_path, postgres
):
    """A node remembers the conversations it committed to and does not ask
    the shared database to create them again; one deleted since (by hand,
    by a restore) is found missing by the batch's read, created, and the
    message stored in it."""
    storage, store, ids = await _store(tmp_path, postgres.create_database())
    a, b = ids[0], ids[1]
    store.start()
    try:
        await store.send(a, b, "first", "hello")
        await storage.run(
            lambda: (
                Conversation.delete()
                .where(Conversation.user_low == min(a, b))
                .execute()
            )
        )
        again = await store.send(a, b, "second", "still there?")
        assert (again.seq, again.duplicate) == (1, False)
        stored = await storage.run(
            lambda: [
                (m.client_id, m.seq) for m in Message.select().order_by(Message.seq)
            ]
        )
        assert stored == [("second", 1)]
    finally:
        await store.stop()
        storage.close()


@pytest.mark.stores
async def test_unseen_pages_are_every_message_past_what_was_seen(tmp_path, db_url):
    """The catch-up query (its SQL kept per shape, server.storage.prepared):
    paged through with every shape of ``seen``, it gives exactly the messages
    past what was seen, in (sender, seq) order, and no other recipient's."""
    storage, _, ids = await _store(tmp_path, db_url)
    me, senders = ids[0], ids[1:5]

    def fill() -> dict[int, list[int]]:
        kept: dict[int, list[int]] = {}
        for n, sender in enumerate(senders):
            low, high = sorted((me, sender))
            conv = Conversation.create(user_low=low, user_high=high)
            seqs = kept.setdefault(sender, [])
            for seq in range(1, 4 + 3 * n):
                recipient = me if seq % 4 else sender  # some the other way
                if recipient == me:
                    seqs.append(seq)
                Message.create(
                    conversation=conv,
                    seq=seq,
                    sender=sender if recipient == me else me,
                    recipient=recipient,
                    client_id=f"{sender}-{seq}",
                    text="",
                    sent_ms=seq,
                )
        return kept

    kept = await storage.run(fill)
    try:
        for seen in (
            {},
            {senders[0]: 2},
            {senders[1]: 0, senders[2]: 5},
            {s: 1 for s in senders},
            {senders[3]: 100, ids[5]: 3},
        ):
            want = [(s, q) for s in sorted(kept) for q in kept[s] if q > seen.get(s, 0)]
            for limit in (2, 3, 500):
                got: list[tuple[int, int]] = []
                after = None
                while True:
                    page = await storage.run(
                        ChatStore.unseen_for, me, seen, after, limit
                    )
                    got += [(m.sender.id, m.seq) for m in page]
                    if len(page) < limit:
                        break
                    after = (page[-1].sender_id, page[-1].seq)
                assert got == want, (seen, limit)
    finally:
        storage.close()
