"""``quicmeet-server backup`` and ``quicmeet-server restore``: the operator's
commands around :mod:`server.backup`, safe to run beside a live server."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .backup import BackupError, backup, restore
from .storage import StorageUnavailable

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quicmeet-server",
        description="back up a quicmeet server's database and files, or restore them",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("backup", "copy the database and the files into a new directory"),
        ("restore", "put a backup in place for a server that has not started yet"),
    ):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument(
            "--data-dir",
            type=Path,
            default=Path("data"),
            help="the server's --data-dir",
        )
        sub.add_argument(
            "--db", default=None, help="the server's --db URL (default: SQLite)"
        )
        sub.add_argument(
            "--blob-dir",
            type=Path,
            default=None,
            help="the server's --blob-dir (default: DATA_DIR/files)",
        )
    commands.choices["backup"].add_argument(
        "--out", type=Path, required=True, help="a new (or empty) directory"
    )
    commands.choices["restore"].add_argument(
        "--from",
        dest="source",
        type=Path,
        required=True,
        help="a directory written by `quicmeet-server backup`",
    )
    return parser


def main(argv: list[str]) -> int:
    """Run ``backup`` or ``restore``; print a JSON summary on stdout; exit 1
    with a one-line reason on stderr when it cannot be done."""
    args = _parser().parse_args(argv)
    files_dir = args.blob_dir if args.blob_dir is not None else args.data_dir / "files"
    try:
        if args.command == "backup":
            summary = backup(args.data_dir, args.db, files_dir, args.out)
        else:
            summary = restore(args.source, args.data_dir, args.db, files_dir)
    except (BackupError, StorageUnavailable, OSError) as exc:
        print(f"quicmeet-server {args.command}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"command": args.command, **summary.__dict__}), flush=True)
    return 0
