"""Durable storage: opening the database, migrating it, and running work off the
event loop on one dedicated thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import peewee
from playhouse.db_url import connect

from . import models
from .checkpoint import WRITER_CHECKPOINT_PAGES, WalCheckpointer
from .migrations import SCHEMA_VERSION, migrate

__all__ = [
    "SCHEMA_VERSION",
    "Storage",
    "StorageUnavailable",
    "is_postgresql",
    "models",
    "open_database",
]

T = TypeVar("T")

_SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",
    "foreign_keys": 1,
    "busy_timeout": 5000,
    "cache_size": -16000,
}


_POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")


class StorageUnavailable(RuntimeError):
    """The database URL is not one we take, or the database cannot be reached;
    the message says which, without the URL's password."""


def is_postgresql(url: str | None) -> bool:
    """Whether ``url`` names a PostgreSQL database (else SQLite)."""
    return url is not None and url.startswith(_POSTGRESQL_SCHEMES)


def open_database(url: str | None, data_dir: Path) -> peewee.Database:
    """Open ``url`` (``sqlite:///path`` or ``postgresql://user@host/db``), or
    SQLite under ``data_dir``; raises :class:`StorageUnavailable` for others."""
    if url is None:
        data_dir.mkdir(parents=True, exist_ok=True)
        return peewee.SqliteDatabase(
            str(data_dir / "quicmeet.db"), pragmas=_SQLITE_PRAGMAS
        )
    if url.startswith("sqlite:///"):
        return connect(url, pragmas=_SQLITE_PRAGMAS)
    if is_postgresql(url):
        return connect(url)
    scheme = url.split(":", 1)[0][:20]
    raise StorageUnavailable(
        f"unsupported database URL scheme {scheme!r}: use sqlite:///PATH or "
        "postgresql://USER@HOST:PORT/DATABASE"
    )


class Storage:
    """Owns the database and the one thread that touches it.

    Every query runs through :meth:`run`, so the event loop never blocks on disk
    and SQLite sees a single writer. Call :meth:`start` once, :meth:`close` at exit.
    """

    def __init__(self, url: str | None, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.db = open_database(url, data_dir)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db")
        self.checkpointer = (
            WalCheckpointer(self.db.database)
            if isinstance(self.db, peewee.SqliteDatabase)
            else None
        )
        """SQLite: what moves checkpoints off the commit path (else None)."""

    async def start(self) -> tuple[int, int]:
        """Connect and migrate; return (schema version before, after). Raises
        :class:`StorageUnavailable` when the database cannot be reached."""
        models.database.initialize(self.db)
        try:
            versions = await self.run(self._open)
        except peewee.OperationalError as exc:
            raise StorageUnavailable(f"cannot open the database: {exc}") from None
        if self.checkpointer is not None:
            self.checkpointer.start()
        return versions

    def _open(self) -> tuple[int, int]:
        self.db.connect(reuse_if_open=True)
        if self.checkpointer is not None:
            self.db.execute_sql(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
        return migrate(self.db)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the database thread and return its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the database thread from outside a loop."""
        return self._executor.submit(fn, *args).result()

    def close(self) -> None:
        """Checkpoint, close the database and stop the thread (blocking)."""

        def _close() -> None:
            if isinstance(self.db, peewee.SqliteDatabase) and not self.db.is_closed():
                self.db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            self.db.close()

        if self.checkpointer is not None:
            self.checkpointer.stop()
        try:
            self._executor.submit(_close).result(timeout=30)
        finally:
            self._executor.shutdown(wait=True)
