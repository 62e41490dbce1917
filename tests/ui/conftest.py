"""Fixtures of the desktop client tests: a private X display (Xvfb), one real
server for the whole run, apps in this process and in child processes."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.conftest import ServerProcess, start_server_process
from tests.pulse import pulse_devices

from .harness import LocalApp, Peer, RemoteApp, befriend_peer, sign_up, start_xvfb

__all__ = ["pulse_devices"]

SCREEN = "2560x1440x24"


@pytest.fixture(scope="session")
def display() -> Iterator[str]:
    """Start Xvfb on a free display number and point ``DISPLAY`` at it.

    The UI tests need it: a machine without Xvfb fails them (CI installs it).
    """
    try:
        proc, name = start_xvfb(SCREEN)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    previous = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = name
    yield os.environ["DISPLAY"]
    proc.terminate()
    proc.wait(10)
    if previous is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = previous


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for all UI tests (each test uses its own user names)."""
    srv = start_server_process(tmp_path_factory.mktemp("ui-server"))
    yield srv
    srv.stop()


_serial = itertools.count(1)


@pytest.fixture
def names() -> Callable[[str], str]:
    """Unique user names: ``names("alice")`` is ``alice<n>`` for this test."""
    n = next(_serial)
    return lambda base: f"{base}{n}"


@pytest.fixture
def apps(
    display: str, ui_server: ServerProcess, tmp_path: Path
) -> Iterator[Callable[..., LocalApp | RemoteApp]]:
    """Factory: ``apps("alice")`` starts an app with its own home; the first of
    a test runs in this process, ``remote=True`` in a child process."""
    started: list[LocalApp | RemoteApp] = []

    def _start(
        home: str, *, remote: bool = False, position: tuple[int, int] = (0, 0)
    ) -> LocalApp | RemoteApp:
        kind = RemoteApp if remote else LocalApp
        app = kind(tmp_path / "homes" / home, ui_server.address, position)
        started.append(app)
        return app

    yield _start
    for app in reversed(started):
        app.close()


@pytest.fixture
def peers(ui_server: ServerProcess, tmp_path: Path) -> Iterator[Callable[..., Peer]]:
    """Factory: a registered, logged-in user without a window."""
    started: list[Peer] = []

    def _start(name: str, register: bool = True) -> Peer:
        peer = Peer(ui_server.address, name, tmp_path / "peers" / name, register)
        started.append(peer)
        return peer

    yield _start
    for peer in started:
        peer.close()


class Friends(NamedTuple):
    """An app signed up as ``alice``, befriended with the headless ``bob``."""

    app: LocalApp | RemoteApp
    peer: Peer
    alice: str
    bob: str


@pytest.fixture
def app_with_friend(
    apps: Callable[..., LocalApp | RemoteApp],
    peers: Callable[..., Peer],
    ui_server: ServerProcess,
    names: Callable[[str], str],
) -> Callable[..., Friends]:
    """Factory: the start most chat and meeting tests share; ``note`` goes
    with the friend request, ``position`` places the window."""

    def _start(note: str = "", position: tuple[int, int] = (0, 0)) -> Friends:
        alice, bob = names("alice"), names("bob")
        app = apps("alice", position=position)
        sign_up(app, ui_server.address, alice)
        peer = peers(bob)
        befriend_peer(app, peer, alice, bob, note)
        return Friends(app, peer, alice, bob)

    return _start
