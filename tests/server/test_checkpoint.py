"""SQLite's log is checkpointed by a thread of its own, never inside a commit."""

from __future__ import annotations

import asyncio
import os

from server.chat_store import ChatStore
from server.storage import Storage
from server.storage.models import User

AUTO_CHECKPOINT_PAGES = 1000
"""Where SQLite would checkpoint inside a commit by default."""


async def _write_pages(storage: Storage, messages: int) -> None:
    ids = await storage.run(
        lambda: [
            User.create(
                username=f"u{i}", password_hash="x", display_name="", created_ms=0
            ).id
            for i in range(2)
        ]
    )
    store = ChatStore(storage)
    store.start()
    try:
        await asyncio.gather(
            *(
                store.send(ids[0], ids[1], f"m{n}", f"{n} " + "x" * 7900)
                for n in range(messages)
            )
        )
    finally:
        await store.stop()


def _database_file_bytes(storage: Storage) -> int:
    """The main database file's size: what checkpoints copied there."""
    return os.path.getsize(storage.db.database)


async def test_commits_leave_the_log_to_the_checkpointer(tmp_path):
    storage = Storage(None, tmp_path / "data")
    assert storage.checkpointer is not None
    storage.checkpointer.interval = 3600.0
    await storage.start()
    try:
        await _write_pages(storage, 600)
        # 4.8 MB of messages went through commits, and none of them copied a
        # page into the database file.
        assert _database_file_bytes(storage) < 1_000_000
        busy, frames, done = await asyncio.to_thread(storage.checkpointer.checkpoint)
        assert busy == 0 and frames > AUTO_CHECKPOINT_PAGES and done == frames
        assert _database_file_bytes(storage) > 4_000_000
    finally:
        storage.close()


async def test_the_checkpointer_runs_by_itself(tmp_path):
    storage = Storage(None, tmp_path / "data")
    assert storage.checkpointer is not None
    storage.checkpointer.interval = 0.05
    await storage.start()
    try:
        await _write_pages(storage, 20)
        for _ in range(200):
            if storage.checkpointer.checkpoints >= 2:
                break
            await asyncio.sleep(0.05)
        assert storage.checkpointer.checkpoints >= 2
        assert _database_file_bytes(storage) > 20 * 7900
    finally:
        storage.close()
