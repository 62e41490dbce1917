"""``meeting-and-file`` for ``bench/adaptation.py``: the call of
:class:`~_adapt_runs.Quicmeet` with a 1 GiB upload beside it through the same
relay (issue 14, item 6).

A third account (``filer``, a friend of a fourth, ``sink``, on loopback)
runs ``quicmeet-cli file send`` through the relay from before the call until
:data:`AFTER_S` after it ends. The file's rate is read from the server's
side: the size of the upload's partial file in the server's data directory,
sampled every 0.25 s. 1 GiB does not finish at 5 Mbit/s in a run of a
minute: what is reported is its rate during the call and after it.

``controller="media"`` runs the upload as shipped, with the media
controller on the command's connection; ``controller="scavenger"`` (the
default) puts that connection on the scavenger controller
(``codec/media/cc/scavenger.py``, docs/adaptation.md, "Files beside a
meeting"); ``controller="scavenger-fixed"`` does too with the fixed 5 ms
target of before (``SPREAD_FACTOR = 0``), to compare in one run.
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


class QuicmeetWithFile(Quicmeet):
    """quicmeet's call with an upload beside it on the publisher's link."""

    def __init__(self, controller: str = "scavenger") -> None:
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
        sender = self._cli(relay.address, work / "filer", "file", "send", "sink",
                           str(path), code=self.controller)  # fmt: skip
        try:
            time.sleep(LEAD_S)
            meeting_start = time.time()
            run = super().run(relay, seconds - LEAD_S - AFTER_S, upstream)
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
    def _cli(address: str, home: Path, *args: str, code: str = "media"):
        spread = {"scavenger": "sc.SPREAD_FACTOR", "scavenger-fixed": "0.0"}
        if code in spread:
            head = ["-c", _SCAVENGER.format(spread=spread[code])]
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
