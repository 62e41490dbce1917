"""Accounts: registration, password and token login, sessions, profiles, search."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import secrets
import unicodedata
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TYPE_CHECKING

import peewee
from PIL import Image, UnidentifiedImageError

from codec.errors import ErrorCode
from codec.messages import (
    AttachTransfers,
    AvatarImage,
    ChangePassword,
    GetAvatar,
    GetProfile,
    LoggedIn,
    Login,
    Logout,
    Ok,
    Profile,
    ProfileInfo,
    PutAvatar,
    Register,
    Registered,
    Resume,
    SearchUsers,
    UpdateProfile,
    UserPage,
)
from codec.messages.accounts import MAX_AVATAR_UPLOAD

from .connection import Account
from .errors import ServiceError
from .storage.models import AuthSession, User
from .storage.prepared import Prepared
from .throttle import LoginThrottle

if TYPE_CHECKING:
    from .connection import ClientConnection
    from .context import ServerContext
    from .passwords import PasswordHasher
    from .router import Router
    from .streams import StreamHandler

__all__ = ["AccountService", "profile_of", "validate_username"]

USERNAME = re.compile(r"^[a-z0-9_.-]{3,32}$")
MIN_PASSWORD = 8
AVATAR_SIZE = 128
MAX_AVATAR_PIXELS = 4096 * 4096
"""Largest avatar accepted, in pixels, as its header announces it."""
MAX_DECODED_PIXELS = 2048 * 2048
"""Largest avatar decoded, in pixels (16 MiB as RGBA): a JPEG is decoded at
1/2 to 1/8 of its size, a PNG has no such shortcut and must be this small."""


def validate_username(name: str) -> str:
    """Return the canonical (lower-case) form of ``name`` or raise."""
    canonical = name.lower()
    if not USERNAME.match(canonical):
        raise ServiceError(
            ErrorCode.INVALID_USERNAME,
            "a username is 3 to 32 characters of a-z, 0-9, '_', '.' and '-'",
        )
    return canonical


def _clean_text(value: str, field: str) -> str:
    value = value.strip()
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
        raise ServiceError(
            ErrorCode.INVALID_ARGUMENT, f"{field} may not contain control characters"
        )
    return value


def profile_of(user: User) -> Profile:
    return Profile(
        username=user.username,
        display_name=user.display_name,
        mood=user.mood,
        avatar_icon=user.avatar_icon,
        avatar_sha256=user.avatar_sha256,
        created_ms=user.created_ms,
    )


_SESSION_BY_TOKEN = Prepared(
    lambda digest: (
        AuthSession.select(AuthSession, User)
        .join(User)
        .where(AuthSession.token_hash == digest)
        .limit(1)
    ),
    str,
)
"""The session of a token's hash, with its user: every resume's lookup."""


def _token_hash(token: bytes) -> str:
    return hashlib.sha256(token).hexdigest()


class AccountService:
    """Handles the account requests of :mod:`codec.messages.accounts`."""

    def __init__(
        self,
        ctx: ServerContext,
        hasher: PasswordHasher,
        announce: Callable[[int, Profile], None],
    ) -> None:
        self.ctx = ctx
        self.hasher = hasher
        self.announce = announce
        """Called with a user id and their new profile after every change."""
        self.throttle = LoginThrottle()
        self.images = ThreadPoolExecutor(max_workers=1, thread_name_prefix="avatars")
        """Decodes avatar pictures, one at a time (each may take 16 MiB)."""

    def close(self) -> None:
        """Finish the picture being decoded and stop the image thread."""
        self.images.shutdown(wait=True, cancel_futures=True)

    def register_handlers(self, router: Router) -> None:
        router.handle(Register, self.register, public=True)
        router.handle(Login, self.login, public=True)
        router.handle(Resume, self.resume, public=True)
        router.handle(AttachTransfers, self.attach_transfers, public=True)
        router.handle(Logout, self.logout)
        router.handle(ChangePassword, self.change_password)
        router.handle(GetProfile, self.get_profile)
        router.handle(UpdateProfile, self.update_profile)
        router.handle(GetAvatar, self.get_avatar)
        router.handle(SearchUsers, self.search)
        router.handle_stream(PutAvatar, self.open_avatar_upload)

    # -- registration and login ------------------------------------------------

    async def register(self, conn: ClientConnection, req: Register) -> Registered:
        username = validate_username(req.username)
        if len(req.password) < MIN_PASSWORD:
            raise ServiceError(
                ErrorCode.WEAK_PASSWORD,
                f"a password needs at least {MIN_PASSWORD} characters",
            )
        password_hash = await self.hasher.hash(req.password)

        def create() -> User:
            with User._meta.database.atomic():
                return User.create(
                    username=username,
                    password_hash=password_hash,
                    display_name=username,
                    created_ms=self.ctx.clock.wall_ms(),
                )

        try:
            user = await self.ctx.storage.run(create)
        except peewee.IntegrityError:
            raise ServiceError(
                ErrorCode.USERNAME_TAKEN, f"the username {username!r} is taken"
            ) from None
        self.ctx.stats["registrations"] += 1
        return Registered(rid=req.rid, profile=profile_of(user))

    def _throttle_keys(self, conn: ClientConnection, username: str) -> list[str]:
        return [f"user:{username}", f"addr:{conn.peer_host}"]

    def _check_throttle(self, keys: list[str]) -> None:
        now = self.ctx.clock.monotonic()
        wait = max(self.throttle.retry_after(key, now) for key in keys)
        if wait > 0:
            raise ServiceError(
                ErrorCode.LOGIN_THROTTLED,
                "too many failed logins; wait before trying again",
                int(wait * 1000) + 1,
            )

    async def _verify_password(
        self, conn: ClientConnection, username: str, password: str
    ) -> User:
        """Check a password under the login throttle; return the user or raise."""
        keys = self._throttle_keys(conn, username)
        self._check_throttle(keys)
        user = await self.ctx.storage.run(
            lambda: User.get_or_none(User.username == username)
        )
        ok = await self.hasher.verify(
            user.password_hash if user is not None else None, password
        )
        now = self.ctx.clock.monotonic()
        if not ok or user is None:
            for key in keys:
                self.throttle.failure(key, now)
            self.ctx.stats["login_failures"] += 1
            raise ServiceError(
                ErrorCode.INVALID_CREDENTIALS, "wrong username or password"
            )
        for key in keys:
            self.throttle.success(key)
        return user

    async def login(self, conn: ClientConnection, req: Login) -> LoggedIn:
        if conn.account is not None:
            raise ServiceError(ErrorCode.ALREADY_AUTHENTICATED, "already logged in")
        username = req.username.lower()
        user = await self._verify_password(conn, username, req.password)
        if self.hasher.needs_rehash(user.password_hash):
            new_hash = await self.hasher.hash(req.password)

            def rehash() -> None:
                User.update(password_hash=new_hash).where(User.id == user.id).execute()

            await self.ctx.storage.run(rehash)
            self.ctx.stats["rehashes"] += 1
        return await self._start_session(conn, req.rid, user)

    async def _start_session(
        self, conn: ClientConnection, rid: int, user: User
    ) -> LoggedIn:
        token = secrets.token_bytes(32)
        now = self.ctx.clock.wall_ms()
        expires = now + int(self.ctx.config.session_ttl * 1000)

        def create() -> int:
            session = AuthSession.create(
                user=user.id,
                token_hash=_token_hash(token),
                created_ms=now,
                expires_ms=expires,
            )
            return int(session.id)

        session_id = await self.ctx.storage.run(create)
        if conn.closing:
            await self.ctx.storage.run(self._delete_session, session_id)
            raise ServiceError(ErrorCode.SHUTTING_DOWN, "connection closed")
        await self.ctx.sessions.attach(
            conn, Account(user.id, user.username, session_id)
        )
        self.ctx.stats["logins"] += 1
        return LoggedIn(
            rid=rid, profile=profile_of(user), token=token, expires_ms=expires
        )

    async def resume(self, conn: ClientConnection, req: Resume) -> LoggedIn:
        if conn.account is not None:
            raise ServiceError(ErrorCode.ALREADY_AUTHENTICATED, "already logged in")
        found = await self._session_of(req.token)
        if found is None:
            raise ServiceError(
                ErrorCode.INVALID_TOKEN, "session expired or revoked; log in again"
            )
        session, user = found
        if conn.closing:
            raise ServiceError(ErrorCode.SHUTTING_DOWN, "connection closed")
        await self.ctx.sessions.attach(
            conn, Account(user.id, user.username, int(session.id))
        )
        self.ctx.stats["resumes"] += 1
        return LoggedIn(
            rid=req.rid,
            profile=profile_of(user),
            token=req.token,
            expires_ms=session.expires_ms,
        )

    async def attach_transfers(
        self, conn: ClientConnection, req: AttachTransfers
    ) -> Ok:
        if conn.account is not None:
            raise ServiceError(ErrorCode.ALREADY_AUTHENTICATED, "already logged in")
        found = await self._session_of(req.token)
        main = None
        if found is not None:
            main = self.ctx.presence.local_connection(found[1].id)
        if (
            found is None
            or main is None
            or main.account is None
            or main.account.session_id != found[0].id
        ):
            # Only the session's live connection on this node gets a transfer
            # connection: one that outlived its session would upload as a
            # user who is offline or signed in elsewhere.
            raise ServiceError(
                ErrorCode.INVALID_TOKEN, "no live session of this token here"
            )
        if conn.closing:
            raise ServiceError(ErrorCode.SHUTTING_DOWN, "connection closed")
        session, user = found
        self.ctx.sessions.attach_transfers(
            conn, Account(user.id, user.username, int(session.id), transfer_only=True)
        )
        self.ctx.stats["transfer_connections"] += 1
        return Ok(rid=req.rid)

    async def _session_of(self, token: bytes) -> tuple[AuthSession, User] | None:
        """The unexpired session of ``token`` and its user, or None."""
        digest = _token_hash(token)
        now = self.ctx.clock.wall_ms()

        def lookup() -> tuple[AuthSession, User] | None:
            session = _SESSION_BY_TOKEN.first(digest)
            if session is None:
                return None
            if session.expires_ms <= now:
                session.delete_instance()
                return None
            return session, session.user

        return await self.ctx.storage.run(lookup)

    @staticmethod
    def _delete_session(session_id: int) -> None:
        AuthSession.delete().where(AuthSession.id == session_id).execute()

    def revoke_later(self, session_id: int) -> None:
        """Revoke a session token in the background (used when kicking)."""
        asyncio.get_running_loop().create_task(
            self.ctx.storage.run(self._delete_session, session_id)
        )

    async def logout(self, conn: ClientConnection, req: Logout) -> Ok:
        assert conn.account is not None
        session_id = conn.account.session_id
        self.ctx.sessions.detach(conn)
        await self.ctx.storage.run(self._delete_session, session_id)
        return Ok(rid=req.rid)

    async def change_password(self, conn: ClientConnection, req: ChangePassword) -> Ok:
        account = conn.account
        assert account is not None
        if len(req.new_password) < MIN_PASSWORD:
            raise ServiceError(
                ErrorCode.WEAK_PASSWORD,
                f"a password needs at least {MIN_PASSWORD} characters",
            )
        user = await self._verify_password(conn, account.username, req.old_password)
        new_hash = await self.hasher.hash(req.new_password)

        def update() -> None:
            with User._meta.database.atomic():
                User.update(password_hash=new_hash).where(User.id == user.id).execute()
                AuthSession.delete().where(
                    (AuthSession.user == user.id)
                    & (AuthSession.id != account.session_id)
                ).execute()

        await self.ctx.storage.run(update)
        for other in list(self.ctx.sessions.connections):
            other_account = other.account
            if (
                other is not conn
                and other_account is not None
                and other_account.user_id == account.user_id
            ):
                self.ctx.sessions.detach(other)
                other.kick("password_changed", "the password was changed")
        return Ok(rid=req.rid)

    # -- profiles -------------------------------------------------------------

    async def _user(self, username: str) -> User:
        user = await self.ctx.storage.run(
            lambda: User.get_or_none(User.username == username.lower())
        )
        if user is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"no user {username!r}")
        return user

    async def get_profile(self, conn: ClientConnection, req: GetProfile) -> ProfileInfo:
        assert conn.account is not None
        user = await self._user(req.username or conn.account.username)
        return ProfileInfo(rid=req.rid, profile=profile_of(user))

    async def update_profile(
        self, conn: ClientConnection, req: UpdateProfile
    ) -> ProfileInfo:
        assert conn.account is not None
        changes: dict[peewee.Field, object] = {}
        if req.display_name is not None:
            name = _clean_text(req.display_name, "display_name")
            if not name:
                raise ServiceError(
                    ErrorCode.INVALID_ARGUMENT, "display_name may not be empty"
                )
            changes[User.display_name] = name
        if req.mood is not None:
            changes[User.mood] = _clean_text(req.mood, "mood")
        if req.avatar_icon is not None:
            changes[User.avatar_icon] = req.avatar_icon
            changes[User.avatar_image] = None
            changes[User.avatar_sha256] = None
        user_id = conn.account.user_id

        def update() -> User:
            if changes:
                User.update(changes).where(User.id == user_id).execute()
            return User.get_by_id(user_id)

        user = await self.ctx.storage.run(update)
        profile = profile_of(user)
        if changes:
            self.announce(user_id, profile)
        return ProfileInfo(rid=req.rid, profile=profile)

    async def get_avatar(self, conn: ClientConnection, req: GetAvatar) -> AvatarImage:
        user = await self._user(req.username)
        if user.avatar_image is None:
            raise ServiceError(
                ErrorCode.NOT_FOUND, f"{user.username} has no avatar picture"
            )
        return AvatarImage(
            rid=req.rid,
            username=user.username,
            image=bytes(user.avatar_image),
            sha256=user.avatar_sha256,
        )

    def open_avatar_upload(
        self, conn: ClientConnection, req: PutAvatar, stream: StreamHandler
    ) -> AvatarUpload:
        if req.size > MAX_AVATAR_UPLOAD:
            raise ServiceError(
                ErrorCode.TOO_LARGE,
                f"an avatar picture may be at most {MAX_AVATAR_UPLOAD} bytes",
            )
        assert conn.account is not None
        return AvatarUpload(
            self.ctx, self.images, conn.account.user_id, req, self.announce
        )

    # -- search ---------------------------------------------------------------

    async def search(self, conn: ClientConnection, req: SearchUsers) -> UserPage:
        prefix = req.prefix.lower()
        if prefix and not re.fullmatch(r"[a-z0-9_.-]*", prefix):
            return UserPage(rid=req.rid, users=[])
        after = req.after.lower() if req.after else None
        limit = req.limit

        def query() -> list[User]:
            cond = (User.username >= prefix) & (User.username < prefix + "~")
            if after is not None:
                cond &= User.username > after
            return list(
                User.select().where(cond).order_by(User.username).limit(limit + 1)
            )

        users = await self.ctx.storage.run(query)
        more = len(users) > limit
        users = users[:limit]
        return UserPage(
            rid=req.rid,
            users=[profile_of(u) for u in users],
            next_after=users[-1].username if more else None,
        )


def reencode_avatar(data: bytes) -> bytes:
    """Decode a PNG or JPEG, shrink it to fit 128x128 and re-encode it as PNG.

    Re-encoding drops metadata and anything hidden in the original file; the
    result (RGB, at most 128x128) always fits in one control frame. The sizes
    are checked from the header before anything is decoded, so a small file
    that claims a huge picture costs nothing.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in ("PNG", "JPEG"):
                raise ServiceError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"an avatar must be PNG or JPEG, not {image.format}",
                )
            if image.width * image.height > MAX_AVATAR_PIXELS:
                raise ServiceError(
                    ErrorCode.TOO_LARGE, "an avatar may have at most 4096x4096 pixels"
                )
            image.draft("RGB", (AVATAR_SIZE * 2, AVATAR_SIZE * 2))
            if image.width * image.height > MAX_DECODED_PIXELS:
                raise ServiceError(
                    ErrorCode.TOO_LARGE,
                    "a PNG avatar may have at most 2048x2048 pixels",
                )
            alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            picture = image.convert("RGBA" if alpha else "RGB")
        picture.thumbnail((AVATAR_SIZE, AVATAR_SIZE), Image.Resampling.LANCZOS)
        if alpha:
            flat = Image.new("RGB", picture.size, (255, 255, 255))
            flat.paste(picture, mask=picture.getchannel("A"))
            picture = flat
        out = io.BytesIO()
        picture.save(out, format="PNG", optimize=True)
        return out.getvalue()
    except ServiceError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise ServiceError(
            ErrorCode.INVALID_ARGUMENT, "the avatar is not a readable PNG or JPEG"
        ) from None


class AvatarUpload:
    """Collects an avatar upload stream, then re-encodes it on ``images`` (the
    one thread that decodes pictures, so at most one is in memory at a time)
    and stores it."""

    def __init__(
        self,
        ctx: ServerContext,
        images: Executor,
        user_id: int,
        req: PutAvatar,
        announce: Callable[[int, Profile], None],
    ) -> None:
        self.ctx = ctx
        self.announce = announce
        self.images = images
        self.user_id = user_id
        self.req = req
        self._data = bytearray()

    def received(self, data: bytes) -> None:
        if len(self._data) + len(data) > self.req.size:
            raise ServiceError(
                ErrorCode.TOO_LARGE, f"more than the announced {self.req.size} bytes"
            )
        self._data += data

    async def finish(self) -> ProfileInfo:
        if len(self._data) != self.req.size:
            raise ServiceError(
                ErrorCode.INVALID_ARGUMENT,
                f"received {len(self._data)} of the announced {self.req.size} bytes",
            )
        loop = asyncio.get_running_loop()
        data, self._data = bytes(self._data), bytearray()
        png = await loop.run_in_executor(self.images, reencode_avatar, data)
        digest = hashlib.sha256(png).hexdigest()
        user_id = self.user_id

        def store() -> User:
            User.update(avatar_image=png, avatar_sha256=digest).where(
                User.id == user_id
            ).execute()
            return User.get_by_id(user_id)

        user = await self.ctx.storage.run(store)
        profile = profile_of(user)
        self.announce(user_id, profile)
        return ProfileInfo(rid=self.req.rid, profile=profile)

    def abort(self) -> None:
        self._data = bytearray()
