"""A user without a window, in a child process, driven by the test through a
socket pair (as :mod:`tests.ui.remote` drives an app).

The client core runs on this process's asyncio loop. It runs apart from the
test's own app because the test process holds Tk: a garbage collection
started on a loop thread there could finalize Tk variables on that thread.

Run as ``python -m tests.ui.peer FD --server S --name N --home DIR [--register]``.
Requests are ``(operation, args)`` with an operation of this module's ``OPS``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import traceback
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from PIL import Image

from client.rooms import RoomEvent, Rooms
from client.transfers import Transfers
from codec.messages import FileCancelled, InvitationDeclined, RoomInvitation
from tests.conftest import Member, close_member, open_member


async def request_friend(member: Member, username: str, note: str = "") -> None:
    await member.friends.request(username, note)


async def send_history(member: Member, to: str, count: int, needle: int) -> None:
    """Send ``count`` numbered messages, pausing under the server's rate limit
    (a burst of 100, then 50 a second)."""
    for i in range(count):
        text = f"message {i:03d}" + (" with the needle" if i == needle else "")
        await member.chat.send(to, text)
        if i == 89:
            await asyncio.sleep(0.4)


async def send_text(member: Member, to: str, text: str) -> None:
    await member.chat.send(to, text)


async def received(member: Member, peer: str) -> list[str]:
    """Texts of the messages ``peer`` sent us, oldest first."""
    await member.chat.drain()
    messages = await member.store.run(member.store.history, peer, None, 1000)
    return [m.text for m in messages if not m.outgoing]


_ROOMS: dict[str, Rooms] = {}
"""The peer's meetings (its ``Rooms``, kept between requests)."""
_ROOM_EVENTS: list[RoomEvent] = []
"""Every room event the peer's ``Rooms`` saw, oldest first."""


def _rooms(member: Member) -> Rooms:
    rooms = _ROOMS.get(member.name)
    if rooms is None:
        rooms = _ROOMS[member.name] = Rooms(member.session)
        rooms.add_listener(_ROOM_EVENTS.append)
    return rooms


async def follow_rooms(member: Member) -> None:
    """Start hearing room events (invitations) before any meeting."""
    _rooms(member)


async def invitations(member: Member) -> list[str]:
    """The rooms we were invited to, by id."""
    return [e.room_id for e in _ROOM_EVENTS if isinstance(e, RoomInvitation)]


async def decline_invitation(member: Member, room_id: str) -> None:
    await _rooms(member).decline(room_id)


async def declined(member: Member) -> list[tuple[str, str]]:
    """(room id, who) of every decline of our invitations heard so far."""
    return [
        (e.room_id, e.username)
        for e in _ROOM_EVENTS
        if isinstance(e, InvitationDeclined)
    ]


async def set_display_name(member: Member, name: str) -> None:
    await member.session.update_profile(display_name=name)


async def set_profile(member: Member, name: str, mood: str) -> None:
    await member.session.update_profile(display_name=name, mood=mood)


async def set_avatar_color(member: Member, rgb: tuple[int, int, int]) -> None:
    """Upload a plain picture of colour ``rgb`` as the avatar."""
    out = io.BytesIO()
    Image.new("RGB", (64, 64), tuple(rgb)).save(out, format="PNG")
    await member.session.set_avatar(out.getvalue())


_CANCELLED: list[FileCancelled] = []
"""Cancellations of the files the peer sent, as they arrived."""


async def send_file(member: Member, to: str, path: str) -> None:
    """Send the file at ``path`` to ``to`` and wait until the server holds it."""
    if not _TRANSFERS:
        member.session.add_event_hook(
            lambda e: _CANCELLED.append(e) if isinstance(e, FileCancelled) else None
        )
        _TRANSFERS.append(Transfers(member.session, member.store, Path(path).parent))
    await _TRANSFERS[0].send(to, Path(path))


_TRANSFERS: list[Transfers] = []
"""The peer's one ``Transfers``, made by its first file."""


async def files_cancelled(member: Member) -> list[str]:
    """Who cancelled each file we sent (a recipient who declined), in order."""
    return [e.by for e in _CANCELLED]


async def read_all(member: Member, peer: str) -> None:
    """Mark every message ``peer`` sent us read (as an open chat would)."""
    for _ in range(100):
        await member.chat.drain()
        messages = await member.store.run(member.store.history, peer, None, 1000)
        latest = [m.seq for m in messages if m.seq and not m.outgoing]
        if latest:
            await member.chat.mark_read(peer, max(latest))
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no message from {peer} arrived")


async def create_meeting(member: Member) -> str:
    state = await _rooms(member).create()
    return state.room_id


async def join_meeting(member: Member, code: str) -> None:
    await _rooms(member).join(code)


async def invite_to_meeting(member: Member, username: str) -> None:
    await _rooms(member).invite(username)


async def raise_hand(member: Member, raised: bool) -> None:
    await _rooms(member).raise_hand(raised)


async def publish(
    member: Member, kind: str, width: int, height: int, fps: float
) -> int:
    """Announce a track (no media is sent on it): its track id."""
    track = await _rooms(member).publish(kind, width, height, fps)  # type: ignore[arg-type]
    return track.track_id


async def unpublish(member: Member, track_id: int) -> None:
    await _rooms(member).unpublish(track_id)


async def leave_meeting(member: Member) -> None:
    await _rooms(member).leave()


_CALLS: dict[str, Any] = {}
"""The peer's meeting with sound (a :class:`~client.media.Call`), by name."""


async def join_with_tone(member: Member, code: str) -> None:
    """Join the meeting ``code`` through the session's own rooms and send the
    stamped test buzz as the microphone (nothing is played)."""
    from client.media import Call
    from client.media.audio_sources import ToneSource

    await member.session.rooms.join(code)
    call = Call(member.session)
    call.start()
    await call.audio.publish(ToneSource())
    _CALLS[member.name] = call


async def audio_from(member: Member, username: str) -> dict[str, Any]:
    """What arrives of ``username``'s sound: whether they speak now (voice
    bits), the last packet's level (127: silence) and packets so far."""
    audio = _CALLS[member.name].audio
    receiver = next(
        (r for r in audio.receivers.values() if r.track.owner == username), None
    )
    if receiver is None:
        return {"speaking": False, "level": None, "packets": 0}
    return {
        "speaking": username in audio.speaking,
        "level": receiver.last_level,
        "packets": receiver.stats_dict()["packets_received"],
    }


async def leave_call(member: Member) -> None:
    call = _CALLS.pop(member.name)
    await member.session.rooms.leave()
    await call.close()


OPS: dict[str, Callable[..., Awaitable[Any]]] = {
    "request_friend": request_friend,
    "send_history": send_history,
    "send_text": send_text,
    "received": received,
    "set_display_name": set_display_name,
    "set_profile": set_profile,
    "set_avatar_color": set_avatar_color,
    "send_file": send_file,
    "files_cancelled": files_cancelled,
    "read_all": read_all,
    "create_meeting": create_meeting,
    "join_meeting": join_meeting,
    "invite_to_meeting": invite_to_meeting,
    "follow_rooms": follow_rooms,
    "invitations": invitations,
    "decline_invitation": decline_invitation,
    "declined": declined,
    "raise_hand": raise_hand,
    "publish": publish,
    "unpublish": unpublish,
    "leave_meeting": leave_meeting,
    "join_with_tone": join_with_tone,
    "audio_from": audio_from,
    "leave_call": leave_call,
}


async def serve(conn: Connection, member: Member) -> None:
    loop = asyncio.get_running_loop()
    while True:
        request = await loop.run_in_executor(None, _receive, conn)
        if request is None or request[0] == "close":
            await close_member(member)
            conn.send(("ok", None))
            return
        name, args = request
        try:
            result = await OPS[name](member, *args)
        except Exception:
            conn.send(("error", traceback.format_exc()))
        else:
            conn.send(("ok", result))


def _receive(conn: Connection) -> tuple[str, tuple[Any, ...]] | None:
    try:
        request: tuple[str, tuple[Any, ...]] = conn.recv()
    except (EOFError, OSError):
        return None
    return request


async def main_async(args: argparse.Namespace) -> None:
    conn = Connection(args.fd)
    member = await open_member(
        args.server, args.name, args.home, register=args.register
    )
    conn.send(("ready", None))
    await serve(conn, member)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("fd", type=int)
    parser.add_argument("--server", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--register", action="store_true")
    asyncio.run(main_async(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
