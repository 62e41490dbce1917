"""``quicmeet-cli``: the scriptable client.

``quicmeet-cli --server HOST:PORT --home DIR [--json] COMMAND``. Every command
connects, resumes the saved session where it needs one, does its work and exits:
0 on success, 1 when the server refused, 2 on bad usage, 3 when the server could
not be reached or its certificate changed, 4 when not logged in.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from . import accounts, files, meet, rooms, social
from .runner import CliFailure, Context, run_command

__all__ = ["build_parser", "main"]

COMMAND_MODULES = [accounts, social, files, rooms, meet]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quicmeet-cli", description="quicmeet command-line client"
    )
    parser.add_argument(
        "--server", help="HOST:PORT of the server (default: the last one used)"
    )
    parser.add_argument(
        "--home",
        type=Path,
        help="this user's directory (default: $QUICMEET_HOME, else XDG data dir)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object per result"
    )
    parser.add_argument(
        "--ca", type=Path, help="trust this CA file instead of pinning the certificate"
    )
    parser.add_argument(
        "--auto-resume",
        action="store_true",
        help="resume interrupted file transfers by themselves after connecting",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log what the client does"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    ctx = Context.from_args(args)
    try:
        return asyncio.run(run_command(ctx, args.handler, args))
    except KeyboardInterrupt:
        return 130
    except CliFailure as exc:
        ctx.fail(exc)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
