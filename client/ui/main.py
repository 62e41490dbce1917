"""``quicmeet``: the desktop client's command line."""

from __future__ import annotations

import argparse
import logging
import sys
import tkinter
from pathlib import Path

from ..engine.errors import EngineStopped
from ..home import Home, default_home
from .app import App

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """``quicmeet``: the desktop client."""
    parser = argparse.ArgumentParser(
        prog="quicmeet", description="The quicmeet desktop client."
    )
    parser.add_argument(
        "--home",
        type=Path,
        help="data folder (default: QUICMEET_HOME or ~/.local/share/quicmeet)",
    )
    parser.add_argument(
        "--server", help="HOST:PORT to sign in to (default: the last one used)"
    )
    parser.add_argument(
        "--ca", type=Path, help="trust this CA file instead of pinning certificates"
    )
    parser.add_argument("--theme", help="a ttkbootstrap theme, e.g. bootstrap-dark")
    parser.add_argument(
        "--no-auto-sign-in", action="store_true", help="ignore the saved sign-in"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        app = App(
            Home(args.home or default_home()),
            server=args.server,
            ca_file=args.ca,
            theme=args.theme,
            auto_sign_in=not args.no_auto_sign_in,
        )
    except EngineStopped as exc:
        print(f"quicmeet: the engine did not start ({exc})", file=sys.stderr)
        return 1
    except tkinter.TclError as exc:
        print(
            f"quicmeet: cannot open a window ({exc}); run it on a desktop, or set "
            "DISPLAY, or use quicmeet-cli",
            file=sys.stderr,
        )
        return 2
    app.run()
    return 0
