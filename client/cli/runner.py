"""Shared plumbing of the CLI commands: output, passwords, connecting, exit codes."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from codec.errors import ErrorCode
from codec.messages import LoggedIn

from ..errors import (
    CertificateMismatch,
    ClientError,
    ConnectionFailed,
    ServerError,
    SessionEnded,
)
from ..home import Home, SavedSession, default_home
from ..session import Session
from ..social import Chat, Friends
from ..store import LocalStore

__all__ = ["CliFailure", "Context", "Handler", "run_command", "to_json"]

DEFAULT_SERVER = "127.0.0.1:4433"

EXIT_SERVER_ERROR = 1
EXIT_USAGE = 2
EXIT_CONNECTION = 3
EXIT_NOT_LOGGED_IN = 4
EXIT_PENDING = 5
"""Stored locally but not sent yet: the next command that connects sends it."""


class CliFailure(Exception):
    """A failure to report to the user and exit with ``exit_code``."""

    def __init__(
        self,
        message: str,
        exit_code: int = EXIT_SERVER_ERROR,
        code: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.code = code
        self.name = name


def to_json(value: Any) -> Any:
    """Turn Structs, dataclasses and bytes into plain JSON values."""
    return msgspec.to_builtins(value, enc_hook=_enc_hook, builtin_types=None)


def _enc_hook(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


@dataclass
class Context:
    """What every command gets: where to connect, where the user's files are."""

    home: Home
    server: str
    json: bool
    ca_file: Path | None
    auto_resume: bool = False
    session: Session | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Context:
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.WARNING,
            stream=sys.stderr,
            format="%(levelname)s %(name)s: %(message)s",
        )
        home = Home(args.home or default_home())
        server = args.server or home.config().get("server") or DEFAULT_SERVER
        return cls(
            home=home,
            server=server,
            json=args.json,
            ca_file=args.ca,
            auto_resume=args.auto_resume,
        )

    # -- output ---------------------------------------------------------------

    def emit(self, result: dict[str, Any], text: str | None = None) -> None:
        """Print a command's result: JSON with ``--json``, else ``text``."""
        if self.json:
            print(json.dumps({"ok": True, **to_json(result)}), flush=True)
        elif text is not None:
            print(text, flush=True)

    def emit_line(self, value: dict[str, Any]) -> None:
        """Print one JSON line (for streams of events)."""
        print(json.dumps(to_json(value)), flush=True)

    def note(self, text: str) -> None:
        """A remark for people, on stderr, never mixed into results."""
        print(text, file=sys.stderr, flush=True)

    def fail(self, exc: CliFailure) -> None:
        if self.json:
            error: dict[str, Any] = {"message": exc.message}
            if exc.code is not None:
                error["code"] = exc.code
            if exc.name is not None:
                error["name"] = exc.name
            print(json.dumps({"ok": False, "error": error}), flush=True)
        else:
            print(f"error: {exc.message}", file=sys.stderr, flush=True)

    # -- passwords ------------------------------------------------------------

    def password(
        self, variable: str = "QUICMEET_PASSWORD", prompt: str = "Password: "
    ) -> str:
        """Read a password from ``variable`` or an interactive prompt, never argv."""
        value = os.environ.get(variable)
        if value is not None:
            return value
        if not sys.stdin.isatty():
            raise CliFailure(
                f"no password: set {variable} or run in a terminal", EXIT_USAGE
            )
        return getpass.getpass(prompt)

    # -- connecting -----------------------------------------------------------

    def _save_login(self, reply: LoggedIn) -> None:
        self.home.save_session(
            SavedSession(
                server=self.server,
                username=reply.profile.username,
                token=reply.token,
                expires_ms=reply.expires_ms,
            )
        )
        self.home.update_config(server=self.server, username=reply.profile.username)

    async def connect(
        self,
        reconnect: bool = False,
        attach: Callable[[Session], None] | None = None,
    ) -> Session:
        """Connect to the server (pinning its certificate on first use);
        ``attach`` runs on the new session before anything is sent."""
        session = Session(
            self.server,
            pins=self.home.pins,
            ca_file=self.ca_file,
            reconnect=reconnect,
            on_login=self._save_login,
        )
        if attach is not None:
            attach(session)
        await session.connect()
        if session.newly_pinned:
            self.note(
                f"pinned the certificate of {self.server} on first use: "
                f"sha256:{session.fingerprint}"
            )
        self.session = session
        return session

    def saved_login(self) -> SavedSession:
        """The saved session for this server; raises when there is none."""
        saved = self.home.saved_session()
        if saved is None or saved.server != self.server:
            raise CliFailure(
                f"not logged in on {self.server}; run: quicmeet-cli login USER",
                EXIT_NOT_LOGGED_IN,
            )
        return saved

    async def logged_in(
        self,
        reconnect: bool = False,
        attach: Callable[[Session], None] | None = None,
    ) -> Session:
        """Connect and resume the saved session."""
        saved = self.saved_login()
        session = await self.connect(reconnect=reconnect, attach=attach)
        try:
            await session.resume(saved.token)
        except ServerError as exc:
            if exc.code == ErrorCode.INVALID_TOKEN:
                self.home.clear_session()
                raise CliFailure(
                    "the saved session expired or was revoked; log in again",
                    EXIT_NOT_LOGGED_IN,
                    int(exc.code),
                    "INVALID_TOKEN",
                ) from None
            raise
        return session

    def open_store(self) -> LocalStore:
        """This user's local database (opened once per command)."""
        store = self.extra.get("store")
        if store is None:
            store = LocalStore(self.home.path / "history.db")
            self.extra["store"] = store
        return store  # type: ignore[no-any-return]

    async def member(
        self,
        reconnect: bool = False,
        attach_more: Callable[[Session, LocalStore], None] | None = None,
    ) -> Member:
        """Connect and resume with friends, chat and the local store attached
        (``attach_more`` adds more, before anything is sent)."""
        store = self.open_store()
        chats: list[Chat] = []

        def attach(session: Session) -> None:
            chats.append(Chat(session, store))
            self.extra["chat"] = chats[0]
            if attach_more is not None:
                attach_more(session, store)

        session = await self.logged_in(reconnect=reconnect, attach=attach)
        return Member(session, Friends(session), chats[0], store)


@dataclass
class Member:
    """A logged-in session with its friends, chat and local store."""

    session: Session
    friends: Friends
    chat: Chat
    store: LocalStore


Handler = Callable[[Context, argparse.Namespace], Awaitable[int | None]]


async def run_command(ctx: Context, handler: Handler, args: argparse.Namespace) -> int:
    """Run one command, translating every client error into a CliFailure."""
    try:
        return (await handler(ctx, args)) or 0
    except ServerError as exc:
        name = exc.code.name if isinstance(exc.code, ErrorCode) else None
        message = exc.message
        if exc.retry_after_ms:
            message += f" (retry in {exc.retry_after_ms / 1000:.1f} s)"
        raise CliFailure(message, EXIT_SERVER_ERROR, int(exc.code), name) from None
    except CertificateMismatch as exc:
        raise CliFailure(
            str(exc), EXIT_CONNECTION, name="CERTIFICATE_MISMATCH"
        ) from None
    except ConnectionFailed as exc:
        raise CliFailure(str(exc), EXIT_CONNECTION, name="CONNECTION_FAILED") from None
    except SessionEnded as exc:
        raise CliFailure(
            str(exc), EXIT_NOT_LOGGED_IN, name=exc.reason.upper()
        ) from None
    except ClientError as exc:
        raise CliFailure(str(exc), EXIT_CONNECTION, name=type(exc).__name__) from None
    finally:
        chat = ctx.extra.get("chat")
        if chat is not None:
            await chat.close()
        if ctx.session is not None:
            await ctx.session.close()
        store = ctx.extra.get("store")
        if store is not None:
            store.close()
