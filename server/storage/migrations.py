"""Schema versions and the steps between them, applied in order at start.

Each step takes the database and brings it from version ``n - 1`` to ``n``. Add a
step at the end; never edit one that has shipped.
"""

from __future__ import annotations

from collections.abc import Callable

import peewee
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as migrate_schema

from . import models

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]


def _v1(db: peewee.Database) -> None:
    db.create_tables([models.User, models.AuthSession])


def _add_column(db: peewee.Database, model: type[peewee.Model], name: str) -> None:
    """Add ``model``'s field ``name`` to its table unless the table has it already
    (tables created by an earlier step from today's model do)."""
    table = model._meta.table_name
    if name not in {column.name for column in db.get_columns(table)}:
        field = model._meta.fields[name]
        migrate_schema(SchemaMigrator.from_database(db).add_column(table, name, field))


def _v2(db: peewee.Database) -> None:
    _add_column(db, models.User, "last_seen_ms")
    db.create_tables(
        [
            models.Friendship,
            models.FriendRequest,
            models.Block,
            models.Conversation,
            models.Message,
            models.Cursor,
        ]
    )


def _v3(db: peewee.Database) -> None:
    db.create_tables([models.FileTransfer])


MIGRATIONS: list[Callable[[peewee.Database], None]] = [_v1, _v2, _v3]
SCHEMA_VERSION = len(MIGRATIONS)


MIGRATION_LOCK = 0x71756963
"""The PostgreSQL advisory lock held while migrating ("quic"), so nodes that
start together on one new database migrate it one after the other."""


def migrate(db: peewee.Database) -> tuple[int, int]:
    """Apply the missing steps; return (version before, version after)."""
    with db.atomic():
        if isinstance(db, peewee.PostgresqlDatabase):
            db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        db.create_tables([models.SchemaVersion])
        row = models.SchemaVersion.select().first()
        before = row.version if row else 0
        if before > SCHEMA_VERSION:
            raise RuntimeError(
                f"database schema version {before} is newer than this server "
                f"({SCHEMA_VERSION}); upgrade quicmeet"
            )
        for step in MIGRATIONS[before:]:
            step(db)
        if row is None:
            models.SchemaVersion.create(version=SCHEMA_VERSION)
        elif before != SCHEMA_VERSION:
            row.version = SCHEMA_VERSION
            row.save()
    return before, SCHEMA_VERSION
