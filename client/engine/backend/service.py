"""The desktop client's backend: signing in and out on the loop thread.

:class:`Backend` is created on the engine's loop and lives as long as the app.
It confirms server certificates with the user before trusting them, opens the
account's local store, signs in (password or saved token), and hands out the
signed-in :class:`~client.engine.backend.account.Account` to commands.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codec.errors import ErrorCode
from codec.messages import LoggedIn

from ...errors import ClientError, ServerError
from ...home import Home, SavedSession
from ...pinning import PinStore
from ...session import Session, parse_address
from ...store import LocalStore
from ..errors import NotSignedIn, UntrustedCertificate
from ..frames import TileFrames
from ..model import ServerIdentity, SignedIn, SignedOut, UiEvent
from .account import Account
from .files import default_downloads
from .meeting import VideoSettings
from .meeting_audio import AudioSettings
from .sound_check import SoundCheck

__all__ = ["Backend", "open_history"]

log = logging.getLogger("quicmeet.engine.backend")

REVOKING_REASONS = ("signed_in_elsewhere", "password_changed", "token_invalid")
"""Session endings after which the saved token must not be used again."""


async def open_history(home: Home, username: str) -> LocalStore:
    """The local store of ``username``: ``home/history.db`` belongs to the first
    account that signs in with this home, others get one under ``accounts/``."""
    store = await asyncio.to_thread(LocalStore, home.path / "history.db")
    owner = await store.run(store.get_json, "owner", None)
    if owner is None:
        await store.run(store.set_json, "owner", username)
        return store
    if owner == username:
        return store
    await asyncio.to_thread(store.close)
    path = home.path / "accounts" / username / "history.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return await asyncio.to_thread(LocalStore, path)


class Backend:
    """Sign-in state of the app, on the loop thread; ``post`` sends UI events,
    meeting pictures go to ``frames``."""

    def __init__(
        self,
        home: Home,
        post: Callable[[UiEvent], None],
        *,
        frames: TileFrames,
        ca_file: Path | None = None,
        idle_timeout: float = 5.0,
    ) -> None:
        self.home = home
        self.post = post
        self.frames = frames
        self.ca_file = ca_file
        self.idle_timeout = idle_timeout
        self.sound = SoundCheck(post)
        """The settings' device list, input meter and test tone."""
        self._account: Account | None = None

    def account(self) -> Account:
        """The signed-in account; raises :class:`NotSignedIn` without one."""
        if self._account is None:
            raise NotSignedIn("not signed in")
        return self._account

    # -- settings ---------------------------------------------------------------

    async def settings(self) -> dict[str, Any]:
        """The home's config, with the downloads folder in effect."""
        return {**self.home.config(), "downloads": str(self.downloads())}

    async def save_settings(self, **values: Any) -> None:
        self.home.update_config(**values)
        if values.get("auto_sign_in") is False:
            self.home.clear_session()
        if "downloads" in values and self._account is not None:
            self._account.set_downloads(self.downloads())
        if {"microphone", "speaker"} & values.keys() and self._account is not None:
            await self._account.meeting.audio.apply_settings()

    def video_settings(self) -> VideoSettings:
        """The camera and screen to send (``camera``, ``camera_size``,
        ``camera_fps`` and ``screen`` settings)."""
        config = self.home.config()
        default = VideoSettings()
        width, _, height = str(config.get("camera_size", "")).partition("x")
        return VideoSettings(
            camera=config.get("camera") or default.camera,
            screen=config.get("screen") or default.screen,
            width=int(width) if width.isdigit() else default.width,
            height=int(height) if height.isdigit() else default.height,
            fps=float(config.get("camera_fps") or default.fps),
        )

    def audio_settings(self) -> AudioSettings:
        """The microphone and speaker to use (``microphone`` and ``speaker``
        settings: device names, ``""`` for the default device) and how much
        they buffer (``audio_buffer_ms``, 10-2000, for a slow or busy machine;
        anything else means the default)."""
        config = self.home.config()
        buffer_ms = config.get("audio_buffer_ms")
        return AudioSettings(
            str(config.get("microphone") or ""),
            str(config.get("speaker") or ""),
            buffer_ms / 1000.0
            if isinstance(buffer_ms, int | float) and 10 <= buffer_ms <= 2000
            else None,
        )

    def downloads(self) -> Path:
        """Where received files are saved (the ``downloads`` setting)."""
        folder = self.home.config().get("downloads")
        return Path(folder) if folder else default_downloads()

    async def trust(self, identity: ServerIdentity) -> None:
        """Pin ``identity`` after the user confirmed its fingerprint."""
        self.home.pins.check(identity.address, identity.fingerprint)

    # -- signing in -------------------------------------------------------------

    async def sign_in(
        self, server: str, username: str, password: str, *, register: bool = False
    ) -> None:
        """Connect, create the account first if ``register``, and log in.

        Raises :class:`UntrustedCertificate` on a first connection to
        ``server`` (confirm with :meth:`trust`, then call again) and
        ``CertificateMismatch`` when its certificate changed.
        """
        await self._drop_account()
        username = username.strip().lower()
        account = await self._open_account(server.strip(), username)
        try:
            if register:
                await account.session.register(username, password)
            await account.session.login(username, password)
            await self._signed_in(account, server.strip())
        except BaseException:
            await account.close()
            self._account = None
            raise

    async def resume_saved(self) -> bool:
        """Sign in with the saved token if there is one; True if signed in."""
        saved = self.home.saved_session()
        if saved is None or not self.home.config().get("auto_sign_in", True):
            return False
        await self._drop_account()
        account = await self._open_account(saved.server, saved.username)
        try:
            await account.session.resume(saved.token)
            await self._signed_in(account, saved.server)
        except ServerError as exc:
            await account.close()
            self._account = None
            if exc.code == ErrorCode.INVALID_TOKEN:
                self.home.clear_session()
                return False
            raise
        except BaseException:
            await account.close()
            self._account = None
            raise
        return True

    async def _open_account(self, server: str, username: str) -> Account:
        try:
            host, port = parse_address(server)
        except ValueError as exc:
            raise ClientError(str(exc)) from None
        address = f"{host}:{port}"
        # The session pins into memory only; the home's store learns a new
        # certificate when the user confirms it (see trust()).
        pins = PinStore(None)
        known = self.home.pins.get(address)
        if known is not None:
            pins.check(address, known)
        session = Session(
            server,
            pins=pins,
            ca_file=self.ca_file,
            reconnect=True,
            idle_timeout=self.idle_timeout,
            on_login=lambda reply: self._save_login(server, reply),
        )
        store = await open_history(self.home, username)
        account = Account(
            session,
            store,
            self.post,
            self._session_ended,
            self.downloads(),
            self.frames,
            self.video_settings,
            self.audio_settings,
        )
        try:
            fingerprint = await session.connect()
            if self.ca_file is None and known is None:
                raise UntrustedCertificate(ServerIdentity(address, fingerprint))
        except BaseException:
            await account.close()
            raise
        return account

    def _save_login(self, server: str, reply: LoggedIn) -> None:
        username = reply.profile.username
        self.home.update_config(server=server, username=username)
        if self.home.config().get("auto_sign_in", True):
            self.home.save_session(
                SavedSession(server, username, reply.token, reply.expires_ms)
            )

    async def _signed_in(self, account: Account, server: str) -> None:
        self._account = account
        session = account.session
        host, port = parse_address(server)
        identity = (
            ServerIdentity(f"{host}:{port}", session.fingerprint)
            if session.fingerprint
            else None
        )
        self.post(SignedIn(account.me, server, identity))
        await account.start()

    # -- signing out ------------------------------------------------------------

    async def sign_out(self) -> None:
        """Log out (revoking the saved token) and close the account."""
        account = self._account
        if account is None:
            return
        self._account = None
        try:
            await account.session.logout()
        except ClientError as exc:
            log.info("logout not confirmed by the server: %s", exc)
        self.home.clear_session()
        await account.close()
        self.post(SignedOut("logout", "You signed out."))

    async def _session_ended(self, account: Account, reason: str, message: str) -> None:
        if account is not self._account:
            return
        self._account = None
        if reason in REVOKING_REASONS:
            self.home.clear_session()
        await account.close()
        self.post(SignedOut(reason, message))

    async def _drop_account(self) -> None:
        if self._account is not None:
            account, self._account = self._account, None
            await account.close()

    async def close(self) -> None:
        """Close the connection at exit, keeping the saved token."""
        await self._drop_account()
        await self.sound.close()
