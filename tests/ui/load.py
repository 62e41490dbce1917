"""The load the responsiveness test and ``bench/ui.py`` put on the app: a
meeting of four with video, and a large file to upload beside it."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.cli import stop

from . import replay as replay_video
from .harness import LocalApp, wait_until

__all__ = ["meeting_of_four", "sound_health", "sparse_file"]


def sparse_file(path: Path, size: int) -> None:
    """``size`` bytes, unique to this run (a random head, so the server
    never holds the content already), mostly a hole so making it costs
    nothing; an upload still reads and sends every byte."""
    with open(path, "wb") as fh:
        fh.write(os.urandom(64 * 1024))
        fh.truncate(size)


def sound_health(stats: str) -> tuple[int, ...] | None:
    """(speaker seconds, underruns, microphone overruns, frames dropped,
    the speaker's and the microphone's buffer in ms) from the own tile's
    sound line (Statistics on), None before it shows."""
    found = re.search(
        r"speaker (\d+) s, (\d+) underruns, buffer (\d+) ms · "
        r"microphone (\d+) overruns, (\d+) dropped, buffer (\d+) ms",
        stats,
    )
    return tuple(int(n) for n in found.groups()) if found else None


def video_tiles(a: LocalApp) -> list[tuple[str, str, tuple[int, int], int]]:
    """The tiles that show video (not the avatars of members without any)."""
    return [t for t in a.call("meeting_tiles") if not t[0].startswith("member:")]


@contextmanager
def meeting_of_four(
    a: LocalApp, server: str, others: list[str], size: str, fps: float
) -> Iterator[list[str]]:
    """The signed-in app ``a`` starts a meeting, turns its camera on and is
    joined by ``others`` (three), who replay stamped video of ``size`` at
    ``fps`` (:mod:`tests.ui.replay`); yields the tiles' keys once every tile
    shows a readable stamp. The app's own camera is whatever its settings
    say (the tests write ``camera=synthetic`` and the same size)."""
    a.call("start_meeting")
    wait_until(lambda: a.call("meeting_open"), a, what="the meeting window")
    replay = replay_video.start(server, a.call("meeting_code"), others, size, fps)
    try:
        a.call("meeting_toggle", "camera")
        tiles = wait_until(
            lambda: len(t := video_tiles(a)) == 1 + len(others) and t,
            a,
            timeout=60,
            what="every tile",
        )
        keys = [t[0] for t in tiles]
        for key in keys:
            wait_until(
                lambda key=key: a.call("tile_stamp", key),
                a,
                timeout=30,
                what=f"video in {key}",
            )
        assert {t[1] for t in tiles} == {"You", *others}
        yield keys
    finally:
        stop(replay)
