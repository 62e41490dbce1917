"""A desktop app in a child process, driven by the test through a pipe.

ttkbootstrap keeps one style per process, so a second app that runs at the
same time as the test's own needs a process of its own. The child runs the
app's Tk loop on its main thread; requests (a step of :mod:`tests.ui.steps`
and its arguments) are read and run on the Tk thread from an ``after()``
poll, exactly like the app's own events (no other thread: see
:mod:`client.ui.link` for why).

Run as ``python -m tests.ui.remote FD --home DIR --server S --position X,Y``
with FD one end of a socket pair whose other end the test holds.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from multiprocessing.connection import Connection
from pathlib import Path

from client.home import Home
from client.ui.app import App

from . import steps

POLL_MS = 10


def _serve(app: App, conn: Connection) -> None:
    def poll() -> None:
        while True:
            try:
                if not conn.poll(0):
                    app.root.after(POLL_MS, poll)
                    return
                request = conn.recv()
            except (EOFError, OSError):
                request = None
            if request is None or request[0] == "close":
                app.close()
                conn.send(("ok", None))
                return
            name, args = request
            try:
                result = getattr(steps, name)(app, *args)
            except Exception:
                conn.send(("error", traceback.format_exc()))
            else:
                conn.send(("ok", result))

    app.root.after(POLL_MS, poll)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("fd", type=int)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--server", required=True)
    parser.add_argument("--position", default="0,0")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    x, y = (int(v) for v in args.position.split(","))
    app = App(Home(args.home), server=args.server, position=(x, y))
    conn = Connection(args.fd)
    _serve(app, conn)
    conn.send(("ready", None))
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
