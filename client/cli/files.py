"""File commands: file send, list, get, pause, resume, cancel."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from codec.media.cc import register_scavenger_congestion_control

from ..transfers import Progress as TransferReport
from ..transfers import Transfer, TransferError, Transfers
from .runner import EXIT_USAGE, CliFailure, Context

__all__ = ["add_commands"]


def default_downloads() -> Path:
    env = os.environ.get("XDG_DOWNLOAD_DIR")
    return Path(env) if env else Path.home() / "Downloads"


async def connect_with_transfers(ctx: Context) -> Transfers:
    """Connect with the transfer manager attached (it resumes interrupted
    transfers at login with ``--auto-resume``)."""
    manager: list[Transfers] = []
    downloads = Path(ctx.home.config().get("downloads") or default_downloads())

    def attach(member_session: Any, store: Any) -> None:
        # This process's connection carries only its files: it gives way to a
        # meeting on the same path (docs/adaptation.md, files beside a meeting).
        member_session.congestion_control = register_scavenger_congestion_control()
        manager.append(
            Transfers(member_session, store, downloads, auto_resume=ctx.auto_resume)
        )

    await ctx.member(reconnect=True, attach_more=attach)
    if not ctx.json:
        _attach_progress(ctx, manager[0])
    return manager[0]


def _attach_progress(ctx: Context, manager: Transfers) -> None:
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    tasks: dict[int, tuple[Any, str]] = {}

    def on_change(transfer: Transfer) -> None:
        if transfer.id not in tasks and transfer.state == "active":
            arrow = "→" if transfer.direction == "up" else "←"
            title = f"{arrow} {transfer.peer}: {transfer.name}"
            task = bar.add_task(title, total=transfer.size, completed=transfer.done)
            tasks[transfer.id] = task, title
            if len(tasks) == 1:
                bar.start()

    def on_progress(progress: TransferReport) -> None:
        if progress.transfer_id in tasks:
            task, title = tasks[progress.transfer_id]
            title = f"{title} (checking)" if progress.checking else title
            bar.update(task, completed=progress.done, description=title)

    manager.on_change = on_change
    manager.on_progress = on_progress
    ctx.extra["progress_bar"] = bar


def _stop_bar(ctx: Context) -> None:
    bar = ctx.extra.pop("progress_bar", None)
    if bar is not None:
        bar.stop()


def _result(transfer: Transfer) -> dict[str, Any]:
    moved = "bytes_sent" if transfer.direction == "up" else "bytes_received"
    return {
        "transfer": transfer,
        "sha256": transfer.sha256,
        moved: transfer.wire_bytes,
        "instant": transfer.instant,
    }


def _describe(transfer: Transfer) -> str:
    if transfer.state == "done":
        if transfer.instant:
            return f"{transfer.name}: sent instantly (the server already had it)"
        verb = "sent to" if transfer.direction == "up" else "saved from"
        where = "" if transfer.direction == "up" else f" as {transfer.path}"
        return f"{transfer.name}: {verb} {transfer.peer}{where}"
    return (
        f"{transfer.name}: {transfer.state} at {transfer.done} of {transfer.size} "
        f"bytes (transfer #{transfer.id}; resume with: quicmeet-cli file resume "
        f"{transfer.id})"
    )


async def _resolve(manager: Transfers, ident: str) -> Transfer:
    known = await manager.list()
    if ident.isdigit():
        for transfer in known:
            if transfer.id == int(ident):
                return transfer
    matches = [t for t in known if t.file_id and t.file_id.startswith(ident.lower())]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise CliFailure(
            f"{ident} matches several transfers; give more of it", EXIT_USAGE
        )
    raise CliFailure(
        f"no transfer {ident} here; see: quicmeet-cli file list", EXIT_USAGE
    )


async def cmd_send(ctx: Context, args: argparse.Namespace) -> None:
    manager = await connect_with_transfers(ctx)
    try:
        transfer = await manager.send(args.user, Path(args.path))
    except TransferError as exc:
        raise CliFailure(str(exc)) from None
    finally:
        _stop_bar(ctx)
    ctx.emit(_result(transfer), _describe(transfer))


async def cmd_get(ctx: Context, args: argparse.Namespace) -> None:
    manager = await connect_with_transfers(ctx)
    file_id = args.id.lower()
    if len(file_id) < 32:
        remote = [f for f in await manager.remote() if f.file_id.startswith(file_id)]
        if len(remote) != 1:
            raise CliFailure(
                f"{args.id} names {len(remote)} files; give more", EXIT_USAGE
            )
        file_id = remote[0].file_id
    dest = Path(args.dest) if args.dest else None
    if dest is not None and args.dest.endswith(os.sep):
        dest.mkdir(parents=True, exist_ok=True)
    try:
        transfer = await manager.download(file_id, dest)
    except TransferError as exc:
        raise CliFailure(str(exc)) from None
    finally:
        _stop_bar(ctx)
    ctx.emit(_result(transfer), _describe(transfer))


async def cmd_list(ctx: Context, args: argparse.Namespace) -> None:
    manager = await connect_with_transfers(ctx)
    remote = await manager.remote()
    local = [t for t in await manager.list() if t.state not in ("done", "cancelled")]
    me = ctx.session.profile.username if ctx.session and ctx.session.profile else ""
    lines = []
    for f in remote:
        direction = "to " + f.recipient if f.sender == me else "from " + f.sender
        lines.append(
            f"{f.file_id[:12]}  {f.state:<9} {f.size:>12}  {direction}: {f.name}"
        )
    if local:
        lines.append("unfinished here:")
        lines += [
            f"#{t.id} {t.direction} {t.state} {t.done}/{t.size} {t.name}" for t in local
        ]
    ctx.emit({"files": remote, "unfinished": local}, "\n".join(lines) or "no files")


async def cmd_pause(ctx: Context, args: argparse.Namespace) -> None:
    store = ctx.open_store()
    T = store.Transfer
    ident = args.id

    def mark() -> int:
        cond = T.id == int(ident) if ident.isdigit() else T.file_id.startswith(ident)
        return int(
            T.update(state="paused").where(cond & (T.state == "active")).execute()
        )

    changed = await store.run(mark)
    if not changed:
        raise CliFailure(f"no active transfer {ident}", EXIT_USAGE)
    ctx.emit({"paused": ident}, f"paused {ident}; resume with: file resume {ident}")


async def cmd_resume(ctx: Context, args: argparse.Namespace) -> None:
    manager = await connect_with_transfers(ctx)
    if args.id:
        targets = [await _resolve(manager, args.id)]
    else:
        targets = [
            t for t in await manager.list() if t.state in ("active", "paused", "failed")
        ]
    results = []
    try:
        for transfer in targets:
            try:
                results.append(await manager.resume(transfer.id))
            except TransferError as exc:
                raise CliFailure(f"#{transfer.id} {transfer.name}: {exc}") from None
    finally:
        _stop_bar(ctx)
    ctx.emit(
        {"transfers": [_result(t) for t in results]},
        "\n".join(_describe(t) for t in results) or "nothing to resume",
    )


async def cmd_cancel(ctx: Context, args: argparse.Namespace) -> None:
    manager = await connect_with_transfers(ctx)
    transfer = await manager.cancel((await _resolve(manager, args.id)).id)
    ctx.emit({"transfer": transfer}, f"cancelled {transfer.name}")


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = commands.add_parser("file", help="send and receive files")
    sub = p.add_subparsers(dest="file_command", metavar="ACTION", required=True)
    send = sub.add_parser("send", help="send a file to a friend")
    send.add_argument("user")
    send.add_argument("path")
    send.set_defaults(handler=cmd_send)
    listing = sub.add_parser(
        "list", help="files on the server and unfinished transfers"
    )
    listing.set_defaults(handler=cmd_list)
    get = sub.add_parser("get", help="download a file (ID from file list)")
    get.add_argument("id")
    get.add_argument("dest", nargs="?", help="a file name or a directory")
    get.set_defaults(handler=cmd_get)
    pause = sub.add_parser("pause", help="pause a running transfer (by # or file id)")
    pause.add_argument("id")
    pause.set_defaults(handler=cmd_pause)
    resume = sub.add_parser("resume", help="resume one transfer, or all unfinished")
    resume.add_argument("id", nargs="?")
    resume.set_defaults(handler=cmd_resume)
    cancel = sub.add_parser("cancel", help="cancel a transfer here and on the server")
    cancel.add_argument("id")
    cancel.set_defaults(handler=cmd_cancel)
