"""The server's durable state as peewee models.

Portable on purpose: nothing here is SQLite-only, so the same models run on
PostgreSQL through ``--db``. Times are Unix milliseconds in 64-bit integers.
"""

from __future__ import annotations

import peewee

__all__ = ["MODELS", "AuthSession", "BaseModel", "SchemaVersion", "User", "database"]

database = peewee.DatabaseProxy()
"""Bound to the real database by :class:`server.storage.Storage` at start."""


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


class SchemaVersion(BaseModel):
    """One row: the version of the schema the database is at."""

    version = peewee.IntegerField()


class User(BaseModel):
    """An account. ``username`` is stored lower-case (names are case-insensitive)."""

    username = peewee.CharField(max_length=32, unique=True)
    password_hash = peewee.CharField(max_length=255)
    display_name = peewee.CharField(max_length=64)
    mood = peewee.CharField(max_length=560, default="")
    avatar_icon = peewee.IntegerField(default=0)
    avatar_image = peewee.BlobField(null=True)
    avatar_sha256 = peewee.CharField(max_length=64, null=True)
    created_ms = peewee.BigIntegerField()


class AuthSession(BaseModel):
    """A login. Only the SHA-256 of its token is stored, never the token."""

    user = peewee.ForeignKeyField(User, backref="sessions", on_delete="CASCADE")
    token_hash = peewee.CharField(max_length=64, unique=True)
    created_ms = peewee.BigIntegerField()
    expires_ms = peewee.BigIntegerField(index=True)


MODELS: list[type[BaseModel]] = [SchemaVersion, User, AuthSession]
