"""Driving apps from a test: the app in this process, apps in child processes,
headless peers, waiting with the Tk loop pumped, and screenshots."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image, ImageGrab

from client.home import Home
from client.ui.app import App
from client.ui.ticker import Ticker
from tests.conftest import ROOT

from . import steps

T = TypeVar("T")

ARTIFACTS = ROOT / "artifacts" / "ui"


def start_xvfb(screen: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start Xvfb on a free display number; the process and ``:N``."""
    if shutil.which("Xvfb") is None:
        raise RuntimeError("Xvfb is not installed (apt-get install xvfb)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", screen,
         "-nolisten", "tcp"],
        pass_fds=[write_fd],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    if not number:
        proc.kill()
        proc.wait(10)
        raise RuntimeError("Xvfb did not start")
    return proc, f":{number}"


def write_config(home: Path, **values: object) -> None:
    """Settings an app finds in ``home`` when it starts."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.json").write_text(json.dumps(values))


class LocalApp:
    """The app in the test's own process: steps run directly; :meth:`pump`
    lets its Tk loop run (tests call it while they wait)."""

    def __init__(self, home: Path, server: str, position: tuple[int, int]) -> None:
        self.app = App(Home(home), server=server, position=position)

    def call(self, step: str, *args: Any) -> Any:
        self.pump()
        result = getattr(steps, step)(self.app, *args)
        self.pump()
        return result

    def query(self, step: str, *args: Any) -> Any:
        """Run a step without pumping: from inside the Tk loop (see
        :func:`run_until`), where ``update()`` would nest a second loop and
        wait for the X server on every call."""
        return getattr(steps, step)(self.app, *args)

    def pump(self) -> None:
        if not self.app.closed:
            self.app.root.update()

    def close(self) -> None:
        self.app.close()


class _Child:
    """A child process running ``python -m module FD ...``, answering
    ``(name, args)`` requests over a socket pair."""

    def __init__(self, module: str, args: list[str]) -> None:
        ours, theirs = socket.socketpair()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, str(theirs.fileno()), *args],
            cwd=ROOT,
            pass_fds=[theirs.fileno()],
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        theirs.close()
        self._conn = Connection(ours.detach())
        kind, _ = self._receive(60)
        assert kind == "ready"

    def _receive(self, timeout: float) -> tuple[str, Any]:
        deadline = time.monotonic() + timeout
        while not self._conn.poll(0.1):
            if self.proc.poll() is not None:
                raise AssertionError(f"the child exited ({self.proc.returncode})")
            if time.monotonic() > deadline:
                raise TimeoutError("the child process did not answer")
        reply: tuple[str, Any] = self._conn.recv()
        return reply

    def call(self, name: str, args: tuple[Any, ...], timeout: float = 30) -> Any:
        self._conn.send((name, args))
        kind, value = self._receive(timeout)
        if kind == "error":
            raise AssertionError(f"{name} failed in the child:\n{value}")
        return value

    def close(self) -> None:
        try:
            self._conn.send(("close", ()))
            self._receive(20)
        except (OSError, EOFError, TimeoutError, AssertionError):
            self.proc.kill()
        self.proc.wait(20)
        self._conn.close()


class RemoteApp:
    """An app in a child process (see :mod:`tests.ui.remote`), driven over a
    socket pair."""

    def __init__(self, home: Path, server: str, position: tuple[int, int]) -> None:
        self.child = _Child(
            "tests.ui.remote",
            [
                "--home",
                str(home),
                "--server",
                server,
                "--position",
                f"{position[0]},{position[1]}",
            ],
        )

    def call(self, step: str, *args: Any) -> Any:
        return self.child.call(step, args)

    def pump(self) -> None:
        """The child runs its own loop."""

    def close(self) -> None:
        self.child.close()


AnyApp = LocalApp | RemoteApp


class Peer:
    """A user without a window, in a child process (see :mod:`tests.ui.peer`)."""

    def __init__(
        self, server: str, name: str, home: Path, register: bool = True
    ) -> None:
        self.name = name
        home.mkdir(parents=True, exist_ok=True)
        self.child = _Child(
            "tests.ui.peer",
            ["--server", server, "--name", name, "--home", str(home)]
            + (["--register"] if register else []),
        )

    def run(self, operation: str, *args: Any, timeout: float = 30) -> Any:
        """Run ``operation`` of :data:`tests.ui.peer.OPS` with ``args``."""
        return self.child.call(operation, args, timeout)

    def close(self) -> None:
        self.child.close()


def wait_until(
    condition: Callable[[], T],
    *apps: AnyApp,
    timeout: float = 15.0,
    what: str = "condition",
) -> T:
    """Pump the apps until ``condition()`` is truthy; return its value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        for app in apps:
            app.pump()
        last = condition()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout} s (last: {last!r})")
        time.sleep(0.005)


def run_until(
    app: LocalApp,
    condition: Callable[[], T],
    *,
    timeout: float,
    what: str = "condition",
    every_ms: int = 100,
) -> T:
    """Run the app's own Tk main loop (as the user's app runs it, with no test
    code between events) until ``condition()`` is truthy; return its value.

    ``condition`` runs inside the loop: it should look with
    :meth:`LocalApp.query`, not :meth:`LocalApp.call` (which pumps).
    """
    root = app.app.root
    deadline = time.monotonic() + timeout
    result: list[T] = []
    failed: list[BaseException] = []

    def check() -> None:
        try:
            value = condition()
        except Exception as exc:  # raised below, not reported by Tk
            failed.append(exc)
            root.quit()
            return
        if value:
            result.append(value)
            root.quit()
        elif time.monotonic() > deadline:
            root.quit()
        else:
            root.after(every_ms, check)

    root.after(every_ms, check)
    root.mainloop()
    if failed:
        raise failed[0]
    if not result:
        raise AssertionError(f"{what} not reached in {timeout} s")
    return result[0]


class TickGaps:
    """The Tk loop's longest gaps, as the user feels them: a :class:`Ticker`
    every ``interval_ms`` notes the time since the previous tick. Coarse on
    purpose (a test's bound, not a measurement: ``bench/ui.py`` measures)."""

    def __init__(self, app: LocalApp, interval_ms: int = 10) -> None:
        self.interval_ms = interval_ms
        self.gaps_ms: list[float] = []
        self._last: float | None = None
        self._ticker = Ticker(app.app.root, interval_ms, self._tick)

    def start(self) -> None:
        self._last = time.perf_counter()
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.gaps_ms.append((now - self._last) * 1000 - self.interval_ms)
        self._last = now

    @property
    def worst_ms(self) -> float:
        """The longest stall so far: a gap beyond the interval, in ms."""
        return max(self.gaps_ms, default=0.0)


def settle(*apps: AnyApp, seconds: float = 0.2) -> None:
    """Let the apps draw for a moment (before a screenshot)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for app in apps:
            app.pump()
        time.sleep(0.02)


def screenshot(name: str, *apps: AnyApp) -> Image.Image:
    """Save the whole screen as ``artifacts/ui/<name>.png`` and return it."""
    settle(*apps)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    image = ImageGrab.grab(xdisplay=os.environ["DISPLAY"])
    image.save(ARTIFACTS / f"{name}.png")
    return image


PASSWORD = "correct horse battery"


def sign_up(app: AnyApp, server: str, username: str) -> None:
    """Create ``username`` through the login view, confirming the certificate
    if the app asks (the first time this home sees the server)."""
    app.call("fill_login", server, username, PASSWORD, True)
    app.call("submit_login")

    def settled() -> str | None:
        if app.call("screen") == "main":
            return "main"
        state = app.call("login_state")
        return "dialog" if state["dialog"] == "FingerprintDialog" else None

    if wait_until(settled, app, what="sign-up") == "dialog":
        app.call("trust_server")
        wait_until(lambda: app.call("screen") == "main", app, what="main view")


def befriend(a: AnyApp, b: AnyApp, a_name: str, b_name: str) -> None:
    """``a`` finds ``b`` by name and asks; ``b`` accepts."""
    a.call("add_friend", b_name)
    wait_until(lambda: (b_name, "") in a.call("people_results"), a, what="search")
    a.call("request_friend", b_name, "")
    wait_until(lambda: b.call("requests") == [a_name], a, b, what="the request")
    a.call("close_people")
    b.call("answer_request", a_name, "Accept")
    wait_until(lambda: [r[1] for r in a.call("drawer")] == [b_name], a, b)
    wait_until(lambda: [r[1] for r in b.call("drawer")] == [a_name], a, b)


def befriend_peer(
    app: AnyApp, peer: Peer, app_name: str, peer_name: str, note: str = ""
) -> None:
    """The headless ``peer`` asks; ``app`` accepts through its view."""
    peer.run("request_friend", app_name, note)
    wait_until(lambda: app.call("requests") == [peer_name], app)
    app.call("answer_request", peer_name, "Accept")
    wait_until(lambda: app.call("drawer") == [("online", peer_name, "", "")], app)
