"""The server's durable state as peewee models.

Portable on purpose: nothing here is SQLite-only, so the same models run on
PostgreSQL through ``--db``. Times are Unix milliseconds in 64-bit integers.
"""

from __future__ import annotations

import peewee

__all__ = [
    "MODELS",
    "AuthSession",
    "BaseModel",
    "Block",
    "Conversation",
    "Cursor",
    "FileTransfer",
    "FriendRequest",
    "Friendship",
    "Message",
    "SchemaVersion",
    "User",
    "database",
]

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
    last_seen_ms = peewee.BigIntegerField(default=0)


class AuthSession(BaseModel):
    """A login. Only the SHA-256 of its token is stored, never the token."""

    user = peewee.ForeignKeyField(User, backref="sessions", on_delete="CASCADE")
    token_hash = peewee.CharField(max_length=64, unique=True)
    created_ms = peewee.BigIntegerField()
    expires_ms = peewee.BigIntegerField(index=True)


class Friendship(BaseModel):
    """One direction of a friendship; a friendship is two rows (a, b) and (b, a)."""

    user = peewee.ForeignKeyField(User, on_delete="CASCADE")
    friend = peewee.ForeignKeyField(User, on_delete="CASCADE")
    since_ms = peewee.BigIntegerField()

    class Meta:
        indexes = ((("user", "friend"), True),)


class FriendRequest(BaseModel):
    """A pending request from ``sender`` to ``recipient``, kept until answered."""

    sender = peewee.ForeignKeyField(User, on_delete="CASCADE")
    recipient = peewee.ForeignKeyField(User, on_delete="CASCADE", index=True)
    note = peewee.CharField(max_length=1120, default="")
    sent_ms = peewee.BigIntegerField()

    class Meta:
        indexes = ((("sender", "recipient"), True),)


class Block(BaseModel):
    """``user`` blocks ``blocked``."""

    user = peewee.ForeignKeyField(User, on_delete="CASCADE")
    blocked = peewee.ForeignKeyField(User, on_delete="CASCADE")

    class Meta:
        indexes = ((("user", "blocked"), True),)


class Conversation(BaseModel):
    """The 1:1 conversation of two users (``user_low`` has the smaller id); its
    messages share one sequence, of which ``last_seq`` is the newest."""

    user_low = peewee.ForeignKeyField(User, on_delete="CASCADE")
    user_high = peewee.ForeignKeyField(User, on_delete="CASCADE")
    last_seq = peewee.BigIntegerField(default=0)

    class Meta:
        indexes = ((("user_low", "user_high"), True),)


class Message(BaseModel):
    """A chat message, kept until delivered and then for the retention period."""

    conversation = peewee.ForeignKeyField(Conversation, on_delete="CASCADE")
    seq = peewee.BigIntegerField()
    sender = peewee.ForeignKeyField(User, on_delete="CASCADE")
    recipient = peewee.ForeignKeyField(User, on_delete="CASCADE")
    client_id = peewee.CharField(max_length=64)
    text = peewee.TextField()
    sent_ms = peewee.BigIntegerField(index=True)

    class Meta:
        indexes = (
            (("conversation", "seq"), True),
            (("sender", "client_id"), True),
            (("recipient", "sender", "seq"), False),
        )


class Cursor(BaseModel):
    """How far ``recipient`` has stored (delivered) and read ``sender``'s messages."""

    recipient = peewee.ForeignKeyField(User, on_delete="CASCADE")
    sender = peewee.ForeignKeyField(User, on_delete="CASCADE")
    delivered_seq = peewee.BigIntegerField(default=0)
    read_seq = peewee.BigIntegerField(default=0)

    class Meta:
        indexes = ((("recipient", "sender"), True),)


class FileTransfer(BaseModel):
    """A file from ``sender`` to ``recipient``; its bytes live in the blob store
    (``partial/<id>`` while uploading, ``blobs/<sha256>`` once verified)."""

    id = peewee.CharField(max_length=32, primary_key=True)
    sender = peewee.ForeignKeyField(User, on_delete="CASCADE", index=True)
    recipient = peewee.ForeignKeyField(User, on_delete="CASCADE", index=True)
    name = peewee.CharField(max_length=1024)
    size = peewee.BigIntegerField()
    sha256 = peewee.CharField(max_length=64, index=True)
    state = peewee.CharField(max_length=16, default="uploading")
    received = peewee.BigIntegerField(default=0)
    downloaded = peewee.BooleanField(default=False)
    created_ms = peewee.BigIntegerField()
    finished_ms = peewee.BigIntegerField(default=0)


MODELS: list[type[BaseModel]] = [
    SchemaVersion,
    User,
    AuthSession,
    Friendship,
    FriendRequest,
    Block,
    Conversation,
    Message,
    Cursor,
    FileTransfer,
]
