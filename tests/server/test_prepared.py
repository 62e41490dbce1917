"""server.storage.prepared: a SELECT built once, run with new values, on both
stores: the rows must be the ones peewee's own execution gives."""

from __future__ import annotations

import pytest

from server.files import offers_waiting
from server.storage import Storage
from server.storage.models import FileTransfer, FriendRequest, Friendship, User
from server.storage.prepared import Prepared


def _requests_to(user_id):
    return (
        FriendRequest.select(FriendRequest, User)
        .join(User, on=FriendRequest.sender)
        .where(FriendRequest.recipient == user_id)
        .order_by(FriendRequest.sent_ms)
    )


def _friend_named(user_id, name):
    return (
        Friendship.select(Friendship.friend, User.username)
        .join(User, on=Friendship.friend)
        .where((Friendship.user == user_id) & (User.username == name))
        .tuples()
    )


def _fill(prefix: str) -> list[int]:
    ids = [
        User.create(
            username=f"{prefix}{i}", password_hash="x", display_name="", created_ms=0
        ).id
        for i in range(5)
    ]
    for i, sender in enumerate(ids[1:]):
        FriendRequest.create(
            sender=sender, recipient=ids[0], note=f"n{i}", sent_ms=100 - i
        )
    for friend in ids[2:]:
        Friendship.create(user=ids[1], friend=friend, since_ms=0)
    return ids


def _as_rows(requests) -> list[tuple]:
    return [(r.id, r.sender.id, r.sender.username, r.note, r.sent_ms) for r in requests]


async def _open(tmp_path, db_url, name):
    storage = Storage(db_url, tmp_path / name)
    await storage.start()
    return storage


@pytest.mark.stores
async def test_prepared_rows_are_peewees(tmp_path, db_url):
    storage = await _open(tmp_path, db_url, "data")
    try:
        requests_to = Prepared(_requests_to, int)
        friend_named = Prepared(_friend_named, int, str)

        def check() -> None:
            ids = _fill("p")
            for user in [*ids, 0, 10**6]:
                # joined models attached and rows in order, as peewee gives them
                assert _as_rows(requests_to(user)) == _as_rows(_requests_to(user))
                for friend in ("p2", "p4", "p0", "", "x' OR 1=1 --"):
                    got = friend_named(user, friend)
                    assert got == list(_friend_named(user, friend))
            assert len(requests_to(ids[0])) == 4
            assert friend_named.first(ids[1], "p3") == (ids[3], "p3")
            assert friend_named.first(ids[1], "p1") is None

        await storage.run(check)
    finally:
        storage.close()


async def test_prepared_follows_the_models_to_another_database(tmp_path, postgres):
    requests_to = Prepared(_requests_to, int)
    first = await _open(tmp_path, None, "a")
    ids = await first.run(_fill, "a")
    assert [r.sender.username for r in await first.run(requests_to, ids[0])] == [
        "a4",
        "a3",
        "a2",
        "a1",
    ]
    first.close()
    second = await _open(tmp_path, postgres.create_database(), "b")
    try:
        # the same ids on another store: SQL built for SQLite (its "?"
        # parameters) fails on PostgreSQL
        await second.run(_fill, "b")
        rows = await second.run(requests_to, ids[0])
        assert [r.sender.username for r in rows] == ["b4", "b3", "b2", "b1"]
    finally:
        second.close()


async def test_prepared_refuses_what_it_cannot_run(tmp_path):
    storage = await _open(tmp_path, None, "data")
    try:
        requests_to = Prepared(_requests_to, int)
        with pytest.raises(TypeError, match="not int"):
            await storage.run(requests_to, "1")
        with pytest.raises(TypeError, match="expected 1 values"):
            await storage.run(requests_to, 1, 2)
        # a value the query does not take as a parameter of its own would be
        # silently ignored: refused when the SQL is built
        ignores = Prepared(lambda user_id: _requests_to(1), int)
        with pytest.raises(ValueError, match="one parameter"):
            await storage.run(ignores, 1)
        twice = Prepared(
            lambda u: FriendRequest.select().where(
                (FriendRequest.sender == u) | (FriendRequest.recipient == u)
            ),
            int,
        )
        with pytest.raises(ValueError, match="one parameter"):
            await storage.run(twice, 1)
        with pytest.raises(TypeError, match="ints or strings"):
            Prepared(_requests_to, float)
    finally:
        storage.close()


@pytest.mark.stores
async def test_files_waiting_at_login_are_one_statement(tmp_path, db_url):
    """The offers made again at every login: each with its sender's name and
    the file's fields, read in one SELECT however many files wait (reading
    ``row.sender`` would add one per file)."""
    storage = await _open(tmp_path, db_url, "data")
    try:

        def check() -> None:
            ids = _fill("f")
            for i, sender in enumerate(ids[1:4]):
                FileTransfer.create(
                    id=f"file{i}",
                    sender=sender,
                    recipient=ids[0],
                    name=f"n{i}.bin",
                    size=10 + i,
                    sha256="0" * 64,
                    state="ready",
                    created_ms=0,
                    finished_ms=3 - i,
                )
            database = storage.db
            statements: list[str] = []
            execute_sql = database.execute_sql

            def counted(sql, params=None, *args, **kwargs):
                statements.append(sql)
                return execute_sql(sql, params, *args, **kwargs)

            database.execute_sql = counted
            try:
                offers = offers_waiting(ids[0], "f0")
            finally:
                database.execute_sql = execute_sql
            assert len(statements) == 1
            assert [
                (o.file_id, o.sender, o.recipient, o.name, o.size) for o in offers
            ] == [
                ("file2", "f3", "f0", "n2.bin", 12),
                ("file1", "f2", "f0", "n1.bin", 11),
                ("file0", "f1", "f0", "n0.bin", 10),
            ]
            assert offers_waiting(ids[1], "f1") == []

        await storage.run(check)
    finally:
        storage.close()
