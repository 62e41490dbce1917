"""Accounts: register, login, sessions, passwords, profiles and user search."""

from __future__ import annotations

from typing import Annotated

import msgspec

from .base import Reply, Request, StreamRequest

__all__ = [
    "AttachTransfers",
    "AvatarImage",
    "ChangePassword",
    "GetAvatar",
    "GetProfile",
    "LoggedIn",
    "Login",
    "Logout",
    "Profile",
    "ProfileInfo",
    "PutAvatar",
    "Register",
    "Registered",
    "Resume",
    "SearchUsers",
    "UpdateProfile",
    "UserPage",
]

Username = Annotated[str, msgspec.Meta(max_length=64)]
Password = Annotated[str, msgspec.Meta(max_length=1024)]
DisplayName = Annotated[str, msgspec.Meta(max_length=64)]
Mood = Annotated[str, msgspec.Meta(max_length=140)]
AvatarIcon = Annotated[int, msgspec.Meta(ge=0, le=255)]
Token = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]

MAX_AVATAR_UPLOAD = 256 * 1024
"""Largest avatar image accepted for upload, in bytes (PNG or JPEG)."""


class Profile(msgspec.Struct, kw_only=True):
    """What anyone logged in may see of an account.

    ``avatar_icon`` picks one of the built-in icons; ``avatar_sha256`` is set when
    the user uploaded a picture (fetch it with ``GetAvatar``) and changes with it.
    ``created_ms`` is the account's creation time in Unix milliseconds.
    """

    username: str
    display_name: str
    mood: str = ""
    avatar_icon: int = 0
    avatar_sha256: str | None = None
    created_ms: int = 0


class Register(Request):
    """Create an account. ``username``: 3-32 of ``a-z 0-9 _ . -``, unique without
    regard to case; ``password``: at least 8 characters. Does not log in."""

    username: Username
    password: Password


class Registered(Reply):
    """The account was created."""

    profile: Profile


class Login(Request):
    """Log in with a password. Ends any other live session of the account."""

    username: Username
    password: Password


class Resume(Request):
    """Log in again with the token of an earlier ``LoggedIn``, without a password."""

    token: Token


class AttachTransfers(Request):
    """Make this connection a *transfer connection* of the live session whose
    token is ``token``: it carries upload and download streams of that user
    and nothing else (no presence, no events, no other request). It is closed
    when the session ends (logout, another login, a changed password). Answers
    ``Ok``; a token of no session online on this node is refused
    (``INVALID_TOKEN``)."""

    token: Token


class LoggedIn(Reply):
    """The connection is now logged in as ``profile.username``.

    ``token`` (32 bytes) resumes the session on a later connection until
    ``expires_ms`` (Unix milliseconds) or until logout; keep it secret.
    """

    profile: Profile
    token: bytes
    expires_ms: int


class Logout(Request):
    """End this session and revoke its token. The connection stays open."""


class ChangePassword(Request):
    """Change the password; ends every other session of the account."""

    old_password: Password
    new_password: Password


class GetProfile(Request):
    """Fetch a profile: ``username`` null means one's own."""

    username: Username | None = None


class ProfileInfo(Reply):
    """A profile, in answer to ``GetProfile`` or ``UpdateProfile``."""

    profile: Profile


class UpdateProfile(Request):
    """Change one's own profile; fields left null keep their value.

    ``avatar_icon`` selects a built-in icon and removes an uploaded picture.
    """

    display_name: DisplayName | None = None
    mood: Mood | None = None
    avatar_icon: AvatarIcon | None = None


class GetAvatar(Request):
    """Fetch the uploaded avatar picture of ``username``."""

    username: Username


class AvatarImage(Reply):
    """An avatar picture as the server re-encoded it (PNG, at most 128x128)."""

    username: str
    image: bytes
    sha256: str


class PutAvatar(StreamRequest):
    """Upload an avatar picture: ``size`` bytes of PNG or JPEG follow this frame on
    the same stream (at most 256 KiB). The server decodes, shrinks and re-encodes
    it and answers with ``ProfileInfo`` on that stream."""

    size: Annotated[int, msgspec.Meta(ge=1)]


class SearchUsers(Request):
    """Find users whose name starts with ``prefix``, sorted by name.

    Paged by key: pass the previous page's ``next_after`` as ``after``.
    """

    prefix: Annotated[str, msgspec.Meta(max_length=32)]
    after: Username | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20


class UserPage(Reply):
    """One page of users; ``next_after`` is null on the last page."""

    users: list[Profile]
    next_after: str | None = None
