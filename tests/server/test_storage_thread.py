"""Every query runs on the storage thread, never on the event loop's."""

from __future__ import annotations

import threading

from codec.messages import ChatMessage
from tests.conftest import befriend, next_of


async def test_chat_login_and_receipts_touch_the_database_only_off_the_loop(
    server, member
):
    db = server.storage.db
    threads: list[str] = []
    for name in ("execute_sql", "commit", "begin"):
        original = getattr(db, name)

        def watched(*args, _original=original, **kwargs):
            threads.append(threading.current_thread().name)
            return _original(*args, **kwargs)

        setattr(db, name, watched)
    alice = await member("alice")
    bob = await member("bob")
    await befriend(alice, bob)
    for n in range(5):
        await alice.chat.send("bob", f"hello {n}")
    message = await next_of(bob.session, ChatMessage)
    await bob.chat.mark_read("alice", message.seq)
    await bob.friends.list()
    await alice.session.logout()
    assert threads
    assert all(name.startswith("db") for name in threads), sorted(set(threads))
