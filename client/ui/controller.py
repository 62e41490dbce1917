"""What views may ask of the client core, from the Tk thread.

Every method returns at once with a ``concurrent.futures.Future``; ``on_done``
and ``on_error`` (when given) run later on the Tk thread. An error without an
``on_error`` is shown to the user by the app. Views call only this class; the
backend objects behind it live on the loop thread and are never touched here.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from ..store import LocalMessage
from ..transfers import Transfer
from .backend import Account, Backend
from .bridge import Bridge
from .model import Person, ServerIdentity

__all__ = ["Controller"]

T = TypeVar("T")
Done = Callable[[Any], None] | None
Failed = Callable[[BaseException], None] | None


def _ignore(_error: BaseException) -> None:
    """For commands whose failure the user need not hear about (typing)."""


class Controller:
    """The command side of the bridge: one method per thing a view can do."""

    def __init__(self, bridge: Bridge, backend: Backend) -> None:
        self._bridge = bridge
        self._backend = backend

    def _run(
        self, command: Callable[[], Awaitable[T]], on_done: Done, on_error: Failed
    ) -> concurrent.futures.Future[T]:
        return self._bridge.call(command, on_done, on_error)

    def _account(
        self,
        command: Callable[[Account], Awaitable[T]],
        on_done: Done = None,
        on_error: Failed = None,
    ) -> concurrent.futures.Future[T]:
        return self._run(lambda: command(self._backend.account()), on_done, on_error)

    # -- settings and signing in ----------------------------------------------------

    def settings(
        self, on_done: Done = None
    ) -> concurrent.futures.Future[dict[str, Any]]:
        return self._run(self._backend.settings, on_done, None)

    def save_settings(
        self, values: dict[str, Any], on_done: Done = None
    ) -> concurrent.futures.Future[None]:
        return self._run(lambda: self._backend.save_settings(**values), on_done, None)

    def resume_saved(
        self, on_done: Done = None, on_error: Failed = None
    ) -> concurrent.futures.Future[bool]:
        return self._run(self._backend.resume_saved, on_done, on_error)

    def sign_in(
        self,
        server: str,
        username: str,
        password: str,
        *,
        register: bool = False,
        on_done: Done = None,
        on_error: Failed = None,
    ) -> concurrent.futures.Future[None]:
        return self._run(
            lambda: self._backend.sign_in(
                server, username, password, register=register
            ),
            on_done,
            on_error,
        )

    def trust(
        self, identity: ServerIdentity, on_done: Done = None
    ) -> concurrent.futures.Future[None]:
        return self._run(lambda: self._backend.trust(identity), on_done, None)

    def sign_out(self) -> concurrent.futures.Future[None]:
        return self._run(self._backend.sign_out, None, None)

    # -- own profile ---------------------------------------------------------------

    def update_profile(
        self,
        display_name: str,
        mood: str,
        on_done: Done = None,
        on_error: Failed = None,
    ) -> concurrent.futures.Future[Person]:
        return self._account(
            lambda a: a.update_profile(display_name, mood), on_done, on_error
        )

    def set_avatar(
        self, path: Path, on_done: Done = None, on_error: Failed = None
    ) -> concurrent.futures.Future[Person]:
        return self._account(lambda a: a.set_avatar(path), on_done, on_error)

    def remove_avatar(self, on_done: Done = None) -> concurrent.futures.Future[Person]:
        return self._account(lambda a: a.remove_avatar(), on_done)

    def set_presence(self, status: str) -> concurrent.futures.Future[None]:
        return self._account(lambda a: a.set_presence(status))

    def change_password(
        self, old: str, new: str, on_done: Done = None, on_error: Failed = None
    ) -> concurrent.futures.Future[None]:
        return self._account(lambda a: a.change_password(old, new), on_done, on_error)

    # -- people and friends ------------------------------------------------------------

    def search_people(
        self, prefix: str, after: str | None = None, on_done: Done = None
    ) -> concurrent.futures.Future[tuple[list[Person], str | None]]:
        return self._account(lambda a: a.search_people(prefix, after), on_done)

    def request_friend(
        self,
        username: str,
        note: str = "",
        on_done: Done = None,
        on_error: Failed = None,
    ) -> concurrent.futures.Future[None]:
        return self._account(
            lambda a: a.request_friend(username, note), on_done, on_error
        )

    def respond(self, username: str, accept: bool) -> concurrent.futures.Future[None]:
        return self._account(lambda a: a.respond(username, accept))

    def cancel_request(self, username: str) -> concurrent.futures.Future[None]:
        return self._account(lambda a: a.cancel_request(username))

    def remove_friend(self, username: str) -> concurrent.futures.Future[None]:
        return self._account(lambda a: a.remove_friend(username))

    def block(self, username: str) -> concurrent.futures.Future[None]:
        return self._account(lambda a: a.block(username))

    # -- chat ---------------------------------------------------------------------

    def open_conversation(self, peer: str) -> concurrent.futures.Future[None]:
        return self._account(lambda a: a.conversations.open(peer))

    def close_conversation(self, peer: str) -> concurrent.futures.Future[None]:
        return self._account(lambda a: a.conversations.close(peer), None, _ignore)

    def older_messages(
        self, peer: str, on_done: Done = None
    ) -> concurrent.futures.Future[bool]:
        return self._account(lambda a: a.conversations.older(peer), on_done)

    def load_until(
        self, peer: str, message_id: int, on_done: Done = None
    ) -> concurrent.futures.Future[None]:
        return self._account(
            lambda a: a.conversations.load_until(peer, message_id), on_done
        )

    def set_viewing(self, peer: str, viewing: bool) -> concurrent.futures.Future[None]:
        return self._account(
            lambda a: a.conversations.set_viewing(peer, viewing), None, _ignore
        )

    def send_message(
        self, peer: str, text: str, on_error: Failed = None
    ) -> concurrent.futures.Future[LocalMessage]:
        return self._account(lambda a: a.conversations.send(peer, text), None, on_error)

    def search_messages(
        self, peer: str, text: str, on_done: Done = None
    ) -> concurrent.futures.Future[list[LocalMessage]]:
        return self._account(lambda a: a.conversations.search(peer, text), on_done)

    def typing(self, peer: str) -> concurrent.futures.Future[None]:
        async def _typing(account: Account) -> None:
            account.conversations.user_typing(peer)

        return self._account(_typing, None, _ignore)

    # -- files -----------------------------------------------------------------------

    def send_file(
        self, peer: str, path: Path, on_error: Failed = None
    ) -> concurrent.futures.Future[Transfer]:
        return self._account(lambda a: a.send_file(peer, path), None, on_error)

    def download(self, file_id: str) -> concurrent.futures.Future[Transfer]:
        return self._account(lambda a: a.download(file_id))

    def pause_transfer(self, transfer_id: int) -> concurrent.futures.Future[Transfer]:
        return self._account(lambda a: a.pause_transfer(transfer_id))

    def resume_transfer(self, transfer_id: int) -> concurrent.futures.Future[Transfer]:
        return self._account(lambda a: a.resume_transfer(transfer_id))

    def cancel_transfer(self, transfer_id: int) -> concurrent.futures.Future[Transfer]:
        return self._account(lambda a: a.cancel_transfer(transfer_id))

    # -- meetings ---------------------------------------------------------------------

    def create_meeting(
        self, password: str = "", on_done: Done = None, on_error: Failed = None
    ) -> concurrent.futures.Future[str]:
        return self._account(lambda a: a.meeting.create(password), on_done, on_error)

    def join_meeting(
        self,
        code: str,
        password: str = "",
        on_done: Done = None,
        on_error: Failed = None,
    ) -> concurrent.futures.Future[str]:
        return self._account(
            lambda a: a.meeting.join(code, password), on_done, on_error
        )

    def leave_meeting(self) -> concurrent.futures.Future[None]:
        return self._account(lambda a: a.meeting.leave())

    def end_meeting(self) -> concurrent.futures.Future[None]:
        return self._account(lambda a: a.meeting.end())

    def set_camera(
        self, on: bool, on_error: Failed = None
    ) -> concurrent.futures.Future[None]:
        return self._account(lambda a: a.meeting.set_camera(on), None, on_error)

    def set_screen(
        self, on: bool, on_error: Failed = None
    ) -> concurrent.futures.Future[None]:
        return self._account(lambda a: a.meeting.set_screen(on), None, on_error)

    def restart_video(
        self, kind: str, on_error: Failed = None
    ) -> concurrent.futures.Future[None]:
        return self._account(lambda a: a.meeting.restart_video(kind), None, on_error)

    def meeting_chat(self, text: str) -> concurrent.futures.Future[None]:
        return self._account(lambda a: a.meeting.chat(text))

    def raise_hand(self, raised: bool) -> concurrent.futures.Future[None]:
        return self._account(lambda a: a.meeting.raise_hand(raised))

    def lock_meeting(self, locked: bool) -> concurrent.futures.Future[None]:
        return self._account(lambda a: a.meeting.lock(locked))

    def invite(self, username: str) -> concurrent.futures.Future[None]:
        return self._account(lambda a: a.meeting.invite(username))

    def remove_member(self, username: str) -> concurrent.futures.Future[None]:
        return self._account(lambda a: a.meeting.remove(username))

    def make_host(self, username: str) -> concurrent.futures.Future[None]:
        return self._account(lambda a: a.meeting.make_host(username))

    def ask_to_mute(self, username: str) -> concurrent.futures.Future[None]:
        return self._account(lambda a: a.meeting.ask_to_mute(username))

    # -- pictures --------------------------------------------------------------------

    def render_image(self, key: str) -> concurrent.futures.Future[None]:
        return self._account(lambda a: a.avatars.render(key), None, _ignore)
