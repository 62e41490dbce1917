"""Friend and chat commands: friend ..., send, history (and listen's chat part)."""

from __future__ import annotations

import argparse
import asyncio
import datetime
from typing import Any

from ..errors import ClientError, ConnectionFailed
from ..social import store_outgoing
from .runner import EXIT_PENDING, CliFailure, Context

__all__ = ["add_commands"]


def _when(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M")


async def cmd_friend(ctx: Context, args: argparse.Namespace) -> None:
    member = await ctx.member()
    friends = member.friends
    action = args.friend_command
    user = getattr(args, "user", None)
    if action == "add":
        await friends.request(user, args.note or "")
        ctx.emit({"requested": user}, f"friend request sent to {user}")
    elif action == "accept":
        await friends.accept(user)
        ctx.emit({"accepted": user}, f"you and {user} are now friends")
    elif action == "decline":
        await friends.decline(user)
        ctx.emit({"declined": user}, f"declined {user}'s request")
    elif action == "cancel":
        await friends.cancel(user)
        ctx.emit({"cancelled": user}, f"withdrew the request to {user}")
    elif action == "remove":
        await friends.remove(user)
        ctx.emit({"removed": user}, f"{user} is no longer a friend")
    elif action == "block":
        await friends.block(user)
        ctx.emit({"blocked": user}, f"blocked {user}")
    elif action == "unblock":
        await friends.unblock(user)
        ctx.emit({"unblocked": user}, f"unblocked {user}")
    elif action == "list":
        listing = await friends.list()
        lines = [
            f"{f.profile.username}\t{f.presence}\t{f.profile.display_name}"
            for f in listing.friends
        ]
        lines += [
            f"{r.profile.username}\twants to be your friend"
            + (f": {r.note}" if r.note else "")
            for r in listing.incoming
        ]
        lines += [f"{r.profile.username}\t(request sent)" for r in listing.outgoing]
        ctx.emit(
            {
                "friends": listing.friends,
                "incoming": listing.incoming,
                "outgoing": listing.outgoing,
                "blocked": listing.blocked,
            },
            "\n".join(lines) or "no friends yet",
        )


async def cmd_send(ctx: Context, args: argparse.Namespace) -> None:
    ctx.saved_login()
    store = ctx.open_store()
    message = await store_outgoing(store, args.user, args.text)
    try:
        member = await ctx.member()
    except ConnectionFailed as exc:
        raise CliFailure(
            f"{exc}; the message is stored and is sent with the next command "
            "that connects",
            EXIT_PENDING,
            name="PENDING",
        ) from None
    message = await member.chat.deliver(message)
    if message.state == "pending":
        raise CliFailure(
            "the message is stored but not sent yet (connection lost); it is sent "
            "with the next command that connects",
            EXIT_PENDING,
            name="PENDING",
        )
    ctx.emit(
        {"message": message},
        f"sent to {message.peer} (#{message.seq})",
    )


_MARKS = {
    "pending": " …",
    "sent": " ✓",
    "delivered": " ✓✓",
    "read": " ✓✓ read",
    "failed": " ✗ not sent",
}


async def cmd_history(ctx: Context, args: argparse.Namespace) -> None:
    try:
        member = await asyncio.wait_for(ctx.member(), 10)
        await member.chat.drain()
    except (ClientError, CliFailure, TimeoutError) as exc:
        ctx.note(f"offline ({exc}); showing the local history only")
    store = ctx.open_store()
    peer = args.user.lower()
    if args.search:
        found = await store.run(store.search, args.search, peer, args.limit)
        messages = list(reversed(found))
    else:
        messages = await store.run(store.history, peer, None, args.limit)
    lines = [
        f"[{_when(m.sent_ms)}] {'me' if m.outgoing else m.peer}: {m.text}"
        f"{_MARKS.get(m.state, '')}"
        for m in messages
    ]
    result: dict[str, Any] = {"peer": peer, "messages": messages}
    ctx.emit(result, "\n".join(lines) or "no messages")


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = commands.add_parser("friend", help="friend requests and the friend list")
    sub = p.add_subparsers(dest="friend_command", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="send a friend request (also to offline users)")
    add.add_argument("user")
    add.add_argument("--note", help="a short note with the request")
    for name, text in (
        ("accept", "accept a friend request"),
        ("decline", "decline a friend request"),
        ("cancel", "withdraw your request"),
        ("remove", "end a friendship"),
        ("block", "block a user"),
        ("unblock", "lift a block"),
    ):
        action = sub.add_parser(name, help=text)
        action.add_argument("user")
    sub.add_parser("list", help="friends with presence, and pending requests")
    p.set_defaults(handler=cmd_friend)

    p = commands.add_parser("send", help="send a chat message to a friend")
    p.add_argument("user")
    p.add_argument("text")
    p.set_defaults(handler=cmd_send)

    p = commands.add_parser("history", help="chat history with a friend (local)")
    p.add_argument("user")
    p.add_argument("--search", help="only messages containing these words")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(handler=cmd_history)
