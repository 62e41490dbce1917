"""``meeting-and-file`` for ``bench/adaptation.py``: the call of
:class:`~_adapt_runs.Quicmeet` with a 1 GiB upload beside it through the same
relay (issue 14, item 6).

A third account (``filer``, a friend of a fourth, ``sink``, on loopback)
runs ``quicmeet-cli file send`` through the relay from before the call until
:data:`AFTER_S` after it ends. The file's rate is read from the server's
side: the size of the upload's partial file in the server's data directory,
sampled every 0.25 s. 1 GiB does not finish at 5 Mbit/s in a run of a
minute: what is reported is its rate during the call and after it.

``controller="pump"`` (the default) sends it as the desktop app does while
its user is in a meeting: through an upload pump process
(``client/transfers/pump.py``) whose connection gives way to the meeting's
media while it lasts and takes the path back after it; the command's
transfer manager is told the meeting runs while a flag file exists, which
the benchmark creates when the call starts and removes when it ends (the
engine's account tells it from its meeting instead). ``controller="media"``
runs ``file send`` as shipped, an upload that knows of no meeting (another
program, another person on the same uplink), with the media controller on
its connection; ``controller="scavenger"`` puts that connection on the
scavenger controller (``codec/media/cc/scavenger.py``, docs/adaptation.md,
"Files beside a meeting") for the whole run, and ``"scavenger-fixed"`` does
too with the fixed target alone (``SPREAD_FACTOR = 0``), to compare in one
run.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from _adapt_runs import Quicmeet, Run  # noqa: I001
from _common import ROOT, Child

FILE_BYTES = 1 << 30
LEAD_S = 6.0
"""The upload runs alone this long before the call (hashing 1 GiB, then moving)."""
AFTER_S = 12.0
"""The upload runs alone this long after the call."""

_SCAVENGER = (
    "import sys, codec.media.cc as cc, client.session as s; "
    "import codec.media.cc.scavenger as sc; sc.SPREAD_FACTOR = {spread}; "
    "init = s.Session.__init__; "
    "s.Session.__init__ = lambda self, *a, **k: init(self, *a, **k, "
    "congestion_control=cc.register_scavenger_congestion_control()); "
    "from client.cli import main; sys.exit(main())"
)

_PUMP = "\n".join([
    "import os, sys, client.transfers.manager as manager",
    "init, flag = manager.Transfers.__init__, {flag!r}",
    "def with_pump(self, *args, **kwargs):",
    "    init(self, *args, **kwargs)",
    "    self.pump_at = 0",
    "    self.media_active = lambda: os.path.exists(flag)",
    "manager.Transfers.__init__ = with_pump",
    "from client.cli import main",
    "sys.exit(main())",
])  # fmt: skip


class QuicmeetWithFile(Quicmeet):
    """quicmeet's call with an upload beside it on the publisher's link."""

    def __init__(self, controller: str = "pump") -> None:
        super().__init__()
        self.controller = controller
        self.name = f"quicmeet+file({controller})"

    def run(self, relay: Child, seconds: float, upstream: Child) -> Run:
        work = Path(upstream.workdir) / f"file-{self.controller}"
        work.mkdir(parents=True, exist_ok=True)
        self._befriend(upstream.address, relay.address, work)
        path = work / "big.bin"
        with open(path, "wb") as handle:
            handle.truncate(FILE_BYTES)
        sizes: list[tuple[float, int]] = []
        stop = threading.Event()
        watcher = threading.Thread(
            target=_watch, args=(upstream.workdir / "data", sizes, stop), daemon=True
        )
        watcher.start()
        flag = work / "in-meeting"
        sender = self._cli(relay.address, work / "filer", "file", "send", "sink",
                           str(path), code=self.controller, flag=flag)  # fmt: skip
        try:
            time.sleep(LEAD_S)
            meeting_start = time.time()
            flag.touch()
            try:
                run = super().run(relay, seconds - LEAD_S - AFTER_S, upstream)
            finally:
                flag.unlink()
            meeting_end = time.time()
            time.sleep(AFTER_S)
        finally:
            sender.kill()
            sender.wait()
            stop.set()
            watcher.join()
        run.extra["file_bps_during"] = _rate(sizes, meeting_start + 5, meeting_end)
        run.extra["file_bps_after"] = _rate(sizes, meeting_end + 3, time.time())
        run.extra["file_bps_before"] = _rate(sizes, meeting_start - 3, meeting_start)
        run.extra["file_bytes"] = sizes[-1][1] if sizes else 0
        run.extra["meeting_s"] = [meeting_start, meeting_end]
        return run

    def _befriend(self, server: str, relay: str, work: Path) -> None:
        from meeting import make_homes

        make_homes(work, server, {"filer": relay, "sink": server})
        for home, args in (("filer", ["friend", "add", "sink"]),
                           ("sink", ["friend", "accept", "filer"])):  # fmt: skip
            address = relay if home == "filer" else server
            self._cli(address, work / home, *args).wait(30)

    @staticmethod
    def _cli(address: str, home: Path, *args: str, code: str = "media",
             flag: Path | None = None):  # fmt: skip
        spread = {"scavenger": "sc.SPREAD_FACTOR", "scavenger-fixed": "0.0"}
        if code in spread:
            head = ["-c", _SCAVENGER.format(spread=spread[code])]
        elif code == "pump":
            head = ["-c", _PUMP.format(flag=str(flag))]
        else:
            head = ["-m", "client"]
        with open(f"{home}.file.err", "a") as err:
            return subprocess.Popen(
                [sys.executable, *head, "--server", address, "--home", str(home),
                 "--json", *args],  # fmt: skip
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, text=True,
            )  # fmt: skip


def _watch(data: Path, sizes: list[tuple[float, int]], stop: threading.Event) -> None:
    """Sample the largest file under ``data`` (the upload) every 0.25 s."""
    while not stop.wait(0.25):
        largest = 0
        for entry in data.rglob("*"):
            try:
                largest = max(largest, entry.stat().st_size)
            except OSError:
                continue
        sizes.append((time.time(), largest))


def _rate(sizes: list[tuple[float, int]], start: float, end: float) -> float | None:
    """Bits per second the upload moved between two Unix times."""
    inside = [(t, n) for t, n in sizes if start <= t <= end]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    return round((inside[-1][1] - inside[0][1]) * 8 / (inside[-1][0] - inside[0][0]))
