"""Copying SQLite's write-ahead log into the database file, off the commit path.

By default SQLite checkpoints inside the commit that pushes the log past 1,000
pages (a few chat batches' worth), and with ``synchronous=normal`` that
checkpoint is the only place the database file is fsynced: that commit takes
tens of milliseconds instead of one, and every chat message queued behind it
waits as long. So a thread of its own, with a connection of its own, runs a
PASSIVE checkpoint every ``interval`` seconds, which copies what no reader
still needs without blocking the writer; once it has caught up, the writer's
next transaction starts the log again from its beginning. The writer's own
checkpoint is only a bound (:data:`WRITER_CHECKPOINT_PAGES`) for a writer so
busy that the thread never catches up.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

__all__ = ["CHECKPOINT_INTERVAL", "WRITER_CHECKPOINT_PAGES", "WalCheckpointer"]

log = logging.getLogger("quicmeet.storage")

CHECKPOINT_INTERVAL = 0.25
"""Seconds between checkpoints."""
WRITER_CHECKPOINT_PAGES = 10_000
"""The writer checkpoints itself only past this many pages of log (40 MB of
4 KiB pages), when the checkpoint thread cannot keep up."""


class WalCheckpointer:
    """Checkpoints the SQLite database at ``path`` every ``interval`` seconds
    from its own thread; :meth:`start` once, :meth:`stop` before closing."""

    def __init__(self, path: str, interval: float = CHECKPOINT_INTERVAL) -> None:
        self.path = path
        self.interval = interval
        self.checkpoints = 0
        """How many checkpoints ran (for tests and operators)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="db-checkpoint", daemon=True
        )
        self._thread.start()

    def checkpoint(self) -> tuple[int, int, int]:
        """Run one PASSIVE checkpoint now; return SQLite's (busy, frames in
        the log, frames checkpointed)."""
        with self._lock:  # the thread, and callers of checkpoint() for tests
            if self._conn is None:
                self._conn = sqlite3.connect(
                    self.path, timeout=5.0, check_same_thread=False
                )
            row = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.checkpoints += 1
            return int(row[0]), int(row[1]), int(row[2])

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.checkpoint()
            except sqlite3.Error:
                log.exception("checkpointing the database failed")

    def stop(self) -> None:
        """Stop the thread and close its connection (blocks for at most one
        checkpoint)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
