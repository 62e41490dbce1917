"""Account commands: register, login, passwd, profile, search, listen."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from codec.messages import Profile

from .runner import EXIT_USAGE, CliFailure, Context, to_json

__all__ = ["add_commands"]


def _profile_text(profile: Profile) -> str:
    lines = [f"{profile.username} ({profile.display_name})"]
    if profile.mood:
        lines.append(f"  mood: {profile.mood}")
    avatar = (
        f"picture sha256:{profile.avatar_sha256[:16]}"
        if profile.avatar_sha256
        else f"icon {profile.avatar_icon}"
    )
    lines.append(f"  avatar: {avatar}")
    return "\n".join(lines)


async def cmd_register(ctx: Context, args: argparse.Namespace) -> None:
    password = ctx.password()
    session = await ctx.connect()
    profile = await session.register(args.user, password)
    await session.login(profile.username, password)
    ctx.emit(
        {"profile": profile},
        f"registered and logged in as {profile.username}",
    )


async def cmd_login(ctx: Context, args: argparse.Namespace) -> None:
    password = ctx.password()
    session = await ctx.connect()
    profile = await session.login(args.user, password)
    ctx.emit({"profile": profile}, f"logged in as {profile.username}")


async def cmd_logout(ctx: Context, args: argparse.Namespace) -> None:
    saved = ctx.home.saved_session()
    if saved is None:
        ctx.emit({"logged_out": False}, "not logged in")
        return
    try:
        session = await ctx.logged_in()
        await session.logout()
    finally:
        ctx.home.clear_session()
    ctx.emit({"logged_out": True}, "logged out")


async def cmd_whoami(ctx: Context, args: argparse.Namespace) -> None:
    session = await ctx.logged_in()
    profile = await session.get_profile()
    ctx.emit({"profile": profile, "server": ctx.server}, _profile_text(profile))


async def cmd_passwd(ctx: Context, args: argparse.Namespace) -> None:
    old = ctx.password("QUICMEET_PASSWORD", "Current password: ")
    new = ctx.password("QUICMEET_NEW_PASSWORD", "New password: ")
    session = await ctx.logged_in()
    await session.change_password(old, new)
    ctx.emit({"changed": True}, "password changed; other sessions were signed out")


async def cmd_profile_show(ctx: Context, args: argparse.Namespace) -> None:
    session = await ctx.logged_in()
    profile = await session.get_profile(args.user)
    ctx.emit({"profile": profile}, _profile_text(profile))


async def cmd_profile_set(ctx: Context, args: argparse.Namespace) -> None:
    icon: int | None = None
    picture: bytes | None = None
    if args.avatar is not None:
        if args.avatar.isdigit():
            icon = int(args.avatar)
        else:
            path = Path(args.avatar)
            try:
                picture = path.read_bytes()
            except OSError as exc:
                raise CliFailure(
                    f"cannot read {path}: {exc.strerror}", EXIT_USAGE
                ) from None
    if args.name is None and args.mood is None and args.avatar is None:
        raise CliFailure(
            "nothing to change: give --name, --mood or --avatar", EXIT_USAGE
        )
    session = await ctx.logged_in()
    profile = await session.update_profile(
        display_name=args.name, mood=args.mood, avatar_icon=icon
    )
    if picture is not None:
        profile = await session.set_avatar(picture)
    ctx.emit({"profile": profile}, _profile_text(profile))


async def cmd_search(ctx: Context, args: argparse.Namespace) -> None:
    session = await ctx.logged_in()
    users, next_after = await session.search(
        args.prefix, after=args.after, limit=args.limit
    )
    text = "\n".join(f"{u.username}\t{u.display_name}" for u in users) or "no users"
    if next_after:
        text += f"\n(more: --after {next_after})"
    ctx.emit({"users": users, "next_after": next_after}, text)


async def cmd_listen(ctx: Context, args: argparse.Namespace) -> None:
    if ctx.auto_resume:
        from .files import connect_with_transfers

        await connect_with_transfers(ctx)
    else:
        await ctx.member(reconnect=True)
    session = ctx.session
    assert session is not None

    async def pump() -> None:
        async for event in session.events():
            data: dict[str, Any] = to_json(event)
            if "type" not in data:
                data = {"type": type(event).__name__, **data}
            ctx.emit_line(data)

    try:
        await asyncio.wait_for(pump(), args.duration)
    except TimeoutError:
        pass


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = commands.add_parser("register", help="create an account and log in")
    p.add_argument("user")
    p.set_defaults(handler=cmd_register)

    p = commands.add_parser("login", help="log in (password from QUICMEET_PASSWORD)")
    p.add_argument("user")
    p.set_defaults(handler=cmd_login)

    p = commands.add_parser("logout", help="end the session and revoke its token")
    p.set_defaults(handler=cmd_logout)

    p = commands.add_parser("whoami", help="show the logged-in account")
    p.set_defaults(handler=cmd_whoami)

    p = commands.add_parser(
        "passwd", help="change the password (QUICMEET_PASSWORD, QUICMEET_NEW_PASSWORD)"
    )
    p.set_defaults(handler=cmd_passwd)

    p = commands.add_parser("profile", help="show or change a profile")
    profile = p.add_subparsers(dest="profile_command", metavar="ACTION", required=True)
    show = profile.add_parser("show", help="show a profile (default: your own)")
    show.add_argument("user", nargs="?")
    show.set_defaults(handler=cmd_profile_show)
    change = profile.add_parser("set", help="change your profile")
    change.add_argument("--name", help="display name")
    change.add_argument("--mood", help="mood line (up to 140 characters)")
    change.add_argument(
        "--avatar", help="a PNG or JPEG file (up to 256 KiB), or an icon number"
    )
    change.set_defaults(handler=cmd_profile_set)

    p = commands.add_parser("search", help="find users by name prefix")
    p.add_argument("prefix")
    p.add_argument("--after", help="continue after this username (paging)")
    p.add_argument("--limit", type=int, default=20, choices=range(1, 101), metavar="N")
    p.set_defaults(handler=cmd_search)

    p = commands.add_parser("listen", help="print server events as JSON lines")
    p.add_argument(
        "--for", dest="duration", type=float, default=None, metavar="SECONDS"
    )
    p.set_defaults(handler=cmd_listen)
