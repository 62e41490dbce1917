"""``python -m client.engine``: the desktop client's engine process.

The window (:mod:`client.ui`) starts it with one end of a socket pair as
``--fd``; it runs until that end closes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
from pathlib import Path

from ..home import Home
from .service import serve

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the engine on the inherited channel ``--fd``."""
    parser = argparse.ArgumentParser(prog="python -m client.engine")
    parser.add_argument("--fd", type=int, required=True, help="the channel")
    parser.add_argument("--home", type=Path, required=True, help="data folder")
    parser.add_argument("--ca", type=Path, help="trust this CA file")
    parser.add_argument(
        "--idle-timeout", type=float, default=5.0, help="QUIC idle timeout, seconds"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    sock = socket.socket(fileno=args.fd)
    code = 0
    # Not asyncio.run: at its end it waits for the default executor's
    # threads, and one may be hashing a large file for a while yet.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(
            serve(
                sock, Home(args.home), ca_file=args.ca, idle_timeout=args.idle_timeout
            )
        )
    except Exception:
        logging.getLogger("quicmeet.engine").exception("the engine failed")
        code = 1
    logging.shutdown()
    sys.stderr.flush()
    # The session and the store are closed by now; worker threads still
    # hashing a file or decoding hold nothing that must survive, and waiting
    # for them would keep a closed window's engine alive for seconds.
    os._exit(code)
