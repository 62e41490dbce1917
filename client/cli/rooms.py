"""Room commands: ``room create``, ``room join``, ``room leave``, ``room members``,
``room invite``.

An account has one live session, and its seat in a room follows the session:
a command run while another client of the same account sits in a room takes
the seat over (that client's connection ends: ``room members`` shows the room,
``room invite`` invites to it, ``room leave`` leaves it), and the seat is freed
when the command exits. ``room create`` and ``room join`` stay in the room for
``--for SECONDS`` (``room join`` until interrupted by default), printing what
happens there.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from codec.errors import ErrorCode
from codec.messages import RoomChat, RoomLeft, RoomState, RoomUpdated

from ..errors import ServerError
from ..events import Disconnected, SessionClosed
from ..rooms import RoomEvent, RoomListener
from ..session import Session
from .runner import Context, to_json

__all__ = ["add_commands", "room_text", "wait_in_room"]


def room_text(state: RoomState) -> str:
    """A room for people: its id, flags and members, host first marked."""
    flags = [
        f
        for f, on in (("locked", state.locked), ("password", state.has_password))
        if on
    ]
    lines = [f"room {state.room_id}" + (f" ({', '.join(flags)})" if flags else "")]
    for member in state.members:
        marks = "".join(
            mark
            for mark, on in (
                (" [host]", member.host),
                (" [hand raised]", member.hand_raised),
                (" [muted]", member.muted),
            )
            if on
        )
        kinds = [t.kind for t in state.tracks if t.owner == member.username]
        media = f"  {', '.join(kinds)}" if kinds else ""
        lines.append(f"  {member.username}{marks}{media}")
    return "\n".join(lines)


async def wait_in_room(
    session: Session,
    duration: float | None,
    on_event: RoomListener | None = None,
) -> str:
    """Wait until ``duration`` s pass (None: forever), we are out of the room, or
    the connection ends (an account has one live session: another client of it
    taking over ends this one). Returns ``"time"``, ``"left"`` or
    ``"disconnected"``. ``on_event`` sees every room event meanwhile."""
    done: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_room_event(event: RoomEvent) -> None:
        if on_event is not None:
            on_event(event)
        if isinstance(event, RoomLeft) and not done.done():
            done.set_result("left")

    async def watch_session() -> None:
        async for event in session.events():
            if isinstance(event, Disconnected | SessionClosed) and not done.done():
                done.set_result("disconnected")
                return

    stop_listening = session.rooms.add_listener(on_room_event)
    watcher = asyncio.get_running_loop().create_task(watch_session())
    try:
        return await asyncio.wait_for(asyncio.shield(done), duration)
    except TimeoutError:
        return "time"
    finally:
        stop_listening()
        watcher.cancel()


async def _stay(ctx: Context, session: Session, duration: float | None) -> None:
    """Print the room's events until ``duration`` s pass or we are out of it."""

    def show(event: RoomEvent) -> None:
        data: dict[str, Any] = to_json(event)
        if ctx.json:
            ctx.emit_line(data)
        elif isinstance(event, RoomUpdated):
            print(room_text(event.room), flush=True)
        elif isinstance(event, RoomChat):
            print(f"<{event.sender}> {event.text}", flush=True)
        else:
            print(f"{data.pop('type')}: {data}", flush=True)

    if await wait_in_room(session, duration, show) == "disconnected":
        ctx.note("the connection ended (another client of this account took over?)")


async def cmd_create(ctx: Context, args: argparse.Namespace) -> None:
    session = await ctx.logged_in()
    state = await session.rooms.create(args.password, args.max_members)
    ctx.emit({"room": state}, room_text(state))
    if args.duration:
        await _stay(ctx, session, args.duration)


async def cmd_join(ctx: Context, args: argparse.Namespace) -> None:
    session = await ctx.logged_in()
    state = await session.rooms.join(args.room_id, args.password)
    ctx.emit({"room": state}, room_text(state))
    await _stay(ctx, session, args.duration)


async def cmd_leave(ctx: Context, args: argparse.Namespace) -> None:
    session = await ctx.logged_in()
    try:
        await session.rooms.leave()
    except ServerError as exc:
        if exc.code != ErrorCode.NOT_FOUND:
            raise
        ctx.emit({"left": False}, "not in a room")
        return
    ctx.emit({"left": True}, "left the room")


async def cmd_members(ctx: Context, args: argparse.Namespace) -> None:
    session = await ctx.logged_in()
    state = await session.rooms.refresh()
    ctx.emit({"room": state}, room_text(state))


async def cmd_invite(ctx: Context, args: argparse.Namespace) -> None:
    session = await ctx.logged_in()
    await session.rooms.invite(args.user)
    ctx.emit({"invited": args.user}, f"invited {args.user}")


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = commands.add_parser("room", help="meeting rooms")
    room = p.add_subparsers(dest="room_command", metavar="ACTION", required=True)

    create = room.add_parser("create", help="create a room (you are its host)")
    create.add_argument("--password", help="people joining by id must give it")
    create.add_argument("--max-members", type=int, choices=range(2, 1001), metavar="N")
    create.add_argument(
        "--for",
        dest="duration",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="stay in the room this long, printing its events (default: leave; "
        "the empty room waits for its members)",
    )
    create.set_defaults(handler=cmd_create)

    join = room.add_parser("join", help="join a room and stay, printing its events")
    join.add_argument("room_id", metavar="ID")
    join.add_argument("--password")
    join.add_argument(
        "--for",
        dest="duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="leave after this long (default: when interrupted)",
    )
    join.set_defaults(handler=cmd_join)

    leave = room.add_parser("leave", help="leave the room this account is in")
    leave.set_defaults(handler=cmd_leave)

    members = room.add_parser("members", help="show the room this account is in")
    members.set_defaults(handler=cmd_members)

    invite = room.add_parser("invite", help="invite an online friend to the room")
    invite.add_argument("user")
    invite.set_defaults(handler=cmd_invite)
