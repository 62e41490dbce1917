"""Backups of a server's durable state, taken while it runs, and their restore.

A backup is a directory: ``manifest.json``, the database (``database.sqlite``
made with SQLite's online backup API, or ``database.pgdump`` made by
``pg_dump --format=custom``), and ``files/``, a copy of the blob store
(complete blobs and the partial uploads, which resume from whatever length
they have). The database is copied first and the files after: a file the copied
database calls complete was renamed into place before its row said so, so its
blob is there when the files are copied.

Blocking throughout: run it as its own process (``quicmeet-server backup``).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .storage import StorageUnavailable, is_postgresql
from .storage.migrations import SCHEMA_VERSION

__all__ = ["BackupError", "BackupSummary", "backup", "restore", "sqlite_path"]

FORMAT = 1
"""The layout version of a backup directory."""
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite"
PGDUMP_FILE = "database.pgdump"
FILES_DIR = "files"


class BackupError(RuntimeError):
    """A backup or restore that cannot go on; the message says why and what to do.
    Nothing already in place was changed."""


@dataclass(frozen=True)
class BackupSummary:
    """What one backup holds: the kind of store (``sqlite`` or ``postgresql``),
    its schema version, and how many blobs and partial uploads (and their bytes)
    were copied."""

    store: str
    schema_version: int
    blobs: int
    partials: int
    file_bytes: int
    created_ms: int


def sqlite_path(db_url: str | None, data_dir: Path) -> Path:
    """The SQLite file the server uses for ``db_url`` and ``data_dir``."""
    if db_url is None:
        return data_dir / "quicmeet.db"
    if db_url.startswith("sqlite:///"):
        return Path(db_url[len("sqlite:///") :])
    raise StorageUnavailable(
        f"unsupported database URL scheme {db_url.split(':', 1)[0][:20]!r}: use "
        "sqlite:///PATH or postgresql://USER@HOST:PORT/DATABASE"
    )


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed (it comes with PostgreSQL)")
    return found


def _run_tool(args: list[str], what: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"{what} failed: {result.stderr.strip()[-2000:]}")


# -- backup --------------------------------------------------------------------


def backup(
    data_dir: Path, db_url: str | None, files_dir: Path, out: Path
) -> BackupSummary:
    """Copy the database at ``db_url`` (SQLite under ``data_dir`` when None) and
    the blob store at ``files_dir`` into the new directory ``out``."""
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} is not empty; give a new directory for the backup")
    out.mkdir(parents=True, exist_ok=True)
    created_ms = int(time.time() * 1000)
    if is_postgresql(db_url):
        assert db_url is not None
        store = "postgresql"
        _run_tool(
            [
                _tool("pg_dump"),
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--file={out / PGDUMP_FILE}",
                f"--dbname={db_url}",
            ],
            "pg_dump",
        )
        version = _pg_schema_version(db_url)
    else:
        store = "sqlite"
        source = sqlite_path(db_url, data_dir)
        if not source.exists():
            raise BackupError(f"there is no database at {source}")
        version = _sqlite_backup(source, out / SQLITE_FILE)
    blobs, partials, size = _copy_files(files_dir, out / FILES_DIR)
    summary = BackupSummary(store, version, blobs, partials, size, created_ms)
    manifest = {"format": FORMAT, **summary.__dict__}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return summary


def _sqlite_backup(source: Path, target: Path) -> int:
    """SQLite's online backup: a consistent copy while the server writes on."""
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
            row = dst.execute("SELECT version FROM schema_version").fetchone()
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot copy the database {source}: {exc}") from None
    finally:
        src.close()
    return int(row[0]) if row else 0


def _pg_schema_version(db_url: str) -> int:
    import psycopg

    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def _copy_files(source: Path, target: Path) -> tuple[int, int, int]:
    """Copy complete blobs and partial uploads; return (blobs, partials, bytes).

    Each file is written under a dot-name and renamed into place, so a server
    sharing ``target`` never sees half a blob; a blob already there is kept
    (the same name is the same content)."""
    counts = {"blobs": 0, "partial": 0}
    size = 0
    for kind in counts:
        root = source / kind
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            dest = target / path.relative_to(source)
            counts[kind] += 1
            if kind == "blobs" and dest.exists():
                size += dest.stat().st_size
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            temporary = dest.with_name(f".{dest.name}.copying")
            try:
                shutil.copyfile(path, temporary)
            except FileNotFoundError:
                counts[kind] -= 1
                continue  # deleted (expired, or a partial that completed) meanwhile
            os.replace(temporary, dest)
            size += dest.stat().st_size
    return counts["blobs"], counts["partial"], size


# -- restore -------------------------------------------------------------------


def read_manifest(source: Path) -> dict[str, object]:
    """The manifest of the backup in ``source``; raises :class:`BackupError`."""
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(
            f"{source} is not a quicmeet backup (it has no {MANIFEST})"
        ) from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"cannot read {source / MANIFEST}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{source} is a backup of an unknown format")
    if int(manifest.get("schema_version", 0)) > SCHEMA_VERSION:
        raise BackupError(
            f"the backup's schema version {manifest['schema_version']} is newer "
            f"than this server ({SCHEMA_VERSION}); upgrade quicmeet"
        )
    return manifest


def restore(
    source: Path, data_dir: Path, db_url: str | None, files_dir: Path
) -> BackupSummary:
    """Put the backup in ``source`` in place: into the empty database at
    ``db_url`` (or SQLite under ``data_dir``) and the blob store at
    ``files_dir``. Refuses to overwrite a database that has tables."""
    manifest = read_manifest(source)
    store = "postgresql" if is_postgresql(db_url) else "sqlite"
    if manifest["store"] != store:
        raise BackupError(
            f"the backup is of a {manifest['store']} database; restore it into "
            f"one of the same kind (--db), not {store}"
        )
    if store == "postgresql":
        assert db_url is not None
        if _pg_has_tables(db_url):
            raise BackupError(
                "the target database already has tables; restore into a new, "
                "empty database (createdb) so nothing is overwritten"
            )
        _run_tool(
            [
                _tool("pg_restore"),
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                f"--dbname={db_url}",
                str(source / PGDUMP_FILE),
            ],
            "pg_restore",
        )
    else:
        target = sqlite_path(db_url, data_dir)
        if target.exists():
            raise BackupError(
                f"{target} already exists; move it away (or restore into a new "
                "--data-dir) so nothing is overwritten"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".restoring")
        shutil.copyfile(source / SQLITE_FILE, partial)
        os.replace(partial, target)
    blobs, partials, size = _copy_files(source / FILES_DIR, files_dir)
    return BackupSummary(
        store,
        int(manifest["schema_version"]),
        blobs,
        partials,
        size,
        int(manifest["created_ms"]),
    )


def _pg_has_tables(db_url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(db_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            ).fetchone()
    except psycopg.OperationalError as exc:
        raise BackupError(f"cannot open the database: {exc}") from None
    return bool(row and row[0])
