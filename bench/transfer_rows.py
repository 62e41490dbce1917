"""What a transfer's row costs the Tk thread: the first row of a transfer
appearing, a progress update of three rows, and the rows turning done, with
the rows' styles built ahead (``prepare_styles``, as the app does at start
and at every change of theme) and built by ttkbootstrap at their first use.

ttkbootstrap builds a style once per theme, so each round measures both ways
in two fresh themes of the same kind, side by side in one run. The figures
are the Tk thread's CPU time for ``TransfersPanel.show`` plus the redraw
that follows (``update``), under Xvfb when there is no display.

    python bench/transfer_rows.py --rounds 4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

import ttkbootstrap as ttk
from _common import ROOT  # noqa: F401, I001  (puts the checkout on sys.path)

from client.engine.model import TransferEntry, TransfersChanged  # noqa: E402
from client.ui.views.transfers import TransfersPanel, prepare_styles  # noqa: E402
from tests.ui.harness import start_xvfb  # noqa: E402

MIB = 1024**2


def entry(i: int, state: str, done: int) -> TransferEntry:
    return TransferEntry(
        id=i,
        direction="up",
        peer="bob",
        name=f"file-{i}.bin",
        path="/tmp",
        size=100 * MIB,
        done=done,
        state=state,
        rate_bps=8 * MIB,
        eta_s=10.0,
    )


def tk_ms(root: ttk.Window, work: Callable[[], object]) -> float:
    """The Tk thread's CPU time for ``work`` and the redraw after it."""
    started = time.thread_time()
    work()
    root.update()
    return (time.thread_time() - started) * 1000


def one_theme(root: ttk.Window, theme: str, prepared: bool) -> dict[str, float]:
    ttk.Style.get_instance().theme_use(theme)
    root.update()
    result = {}
    if prepared:
        result["prepare_ms"] = tk_ms(root, lambda: prepare_styles(root))
    panel = TransfersPanel(root, controller=None)  # type: ignore[arg-type]
    panel.pack(fill="x")
    root.update()

    def show(*entries: TransferEntry) -> float:
        return tk_ms(root, lambda: panel.show(TransfersChanged(transfers=entries)))

    result["first_row_ms"] = show(entry(1, "active", MIB))
    show(entry(1, "active", MIB), entry(2, "active", MIB), entry(3, "active", MIB))
    updates = [
        show(*(entry(i, "active", step * MIB) for i in (1, 2, 3)))
        for step in range(2, 12)
    ]
    result["progress_3_rows_ms"] = statistics.median(updates)
    result["first_done_ms"] = show(
        entry(1, "done", 100 * MIB),
        entry(2, "active", 12 * MIB),
        entry(3, "active", 12 * MIB),
    )
    result["second_done_ms"] = show(
        entry(1, "done", 100 * MIB),
        entry(2, "done", 100 * MIB),
        entry(3, "active", 12 * MIB),
    )
    panel.destroy()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    xvfb = None
    if not os.environ.get("DISPLAY"):
        xvfb, os.environ["DISPLAY"] = start_xvfb("1280x800x24")
    try:
        root = ttk.Window(themename="bootstrap-light")
        themes = [
            t for t in ttk.Style.get_instance().theme_names() if t.endswith("-light")
        ]
        themes = [t for t in themes if t != "bootstrap-light"]
        if len(themes) < 2 * args.rounds:
            raise SystemExit(
                f"only {len(themes)} fresh light themes for {args.rounds} rounds"
            )
        runs: dict[str, list[dict[str, float]]] = {
            "built_at_first_use": [],
            "prepared": [],
        }
        for i in range(args.rounds):
            # Alternate which way goes first, so neither always has the warmer caches.
            order = [("built_at_first_use", False), ("prepared", True)]
            for name, prepared in order if i % 2 == 0 else order[::-1]:
                runs[name].append(one_theme(root, themes.pop(0), prepared))
        root.destroy()
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(10)
    summary = {
        name: {
            key: {
                "median": round(statistics.median(r[key] for r in rounds), 2),
                "max": round(max(r[key] for r in rounds), 2),
            }
            for key in rounds[0]
        }
        for name, rounds in runs.items()
    }
    print(json.dumps({"rounds": args.rounds, "tk_cpu_ms": summary}))


if __name__ == "__main__":
    main()
