"""Fixtures shared by the whole suite: real servers on loopback, real clients."""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from client import Session
from client.social import Chat, Friends
from client.store import LocalStore
from server import ServerApp, ServerConfig
from server.clock import ShiftedClock

from .stores import PostgresServer, RedisServer

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
BENCH = ROOT / "bench"


def server_config(tmp_path: Path, **overrides: object) -> ServerConfig:
    """A server configuration under ``tmp_path`` listening on a free port."""
    config = ServerConfig(
        host="127.0.0.1",
        port=0,
        data_dir=tmp_path / "data",
        cert=tmp_path / "certs" / "cert.pem",
        key=tmp_path / "certs" / "key.pem",
    )
    for name, value in overrides.items():
        setattr(config, name, value)
    return config


STORES = ("sqlite", "postgresql")
"""The durable stores a test marked ``stores`` runs against."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "stores: run the test on SQLite and on PostgreSQL (``db_url``)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("stores") and (
        "db_url" in metafunc.fixturenames
    ):
        metafunc.parametrize("db_url", STORES, indirect=True)


@pytest.fixture
def bench() -> Callable[[str], ModuleType]:
    """Imports a module of ``bench/`` (whose modules import each other by
    their bare names, as the benchmarks run them) for a test of its own."""

    def load(name: str) -> ModuleType:
        sys.path.insert(0, str(BENCH))
        try:
            return importlib.import_module(name)
        finally:
            sys.path.remove(str(BENCH))

    return load


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole run (tests get own databases)."""
    pg = PostgresServer()
    pg.start()
    yield pg
    pg.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real Redis server for the whole run."""
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def db_url(request: pytest.FixtureRequest) -> str | None:
    """The ``--db`` URL of the test's server: None (SQLite in the data
    directory) unless the test is marked ``stores`` and runs on PostgreSQL,
    where it gets a fresh database of its own."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return None
    return request.getfixturevalue("postgres").create_database()


@pytest.fixture
async def server(tmp_path: Path, db_url: str | None) -> AsyncIterator[ServerApp]:
    """A real quicmeet server in this process, on a free UDP port; its clock
    (``server.context.clock``) can be moved forward past a timer."""
    app = ServerApp(server_config(tmp_path, db_url=db_url), clock=ShiftedClock())
    await app.start()
    yield app
    await app.shutdown(grace=0.0)


def address(app: ServerApp) -> str:
    host, port = app.address
    return f"{host}:{port}"


@pytest.fixture
async def connect(server: ServerApp) -> AsyncIterator:
    """Factory: a connected Session to ``server`` (closed at teardown)."""
    sessions: list[Session] = []

    async def _connect(**kwargs: object) -> Session:
        session = Session(address(server), **kwargs)  # type: ignore[arg-type]
        await session.connect()
        sessions.append(session)
        return session

    yield _connect
    for session in sessions:
        await session.close()


@pytest.fixture
async def user(connect) -> AsyncIterator:
    """Factory: a registered, logged-in Session for ``name``."""

    async def _user(name: str, password: str = PASSWORD) -> Session:
        session = await connect()
        await session.register(name, password)
        await session.login(name, password)
        return session

    yield _user


@dataclass
class Member:
    """A logged-in user with friends, chat and a local store, as an app has."""

    name: str
    session: Session
    friends: Friends
    chat: Chat
    store: LocalStore


async def open_member(
    address_: str, name: str, home: Path, *, register: bool = True, **kwargs: object
) -> Member:
    """Connect ``name`` with a local store under ``home``; register it first."""
    home.mkdir(parents=True, exist_ok=True)
    session = Session(address_, **kwargs)  # type: ignore[arg-type]
    store = LocalStore(home / "history.db")
    chat = Chat(session, store)
    await session.connect()
    if register:
        await session.register(name, PASSWORD)
    await session.login(name, PASSWORD)
    return Member(name, session, Friends(session), chat, store)


async def close_member(member: Member) -> None:
    await member.chat.close()
    await member.session.close()
    member.store.close()


@pytest.fixture
async def member(server: ServerApp, tmp_path: Path) -> AsyncIterator:
    """Factory: a registered, logged-in :class:`Member` on ``server``."""
    members: list[Member] = []

    async def _member(name: str, **kwargs: object) -> Member:
        m = await open_member(
            address(server), name, tmp_path / "homes" / name, **kwargs
        )
        members.append(m)
        return m

    yield _member
    for m in members:
        await close_member(m)


async def befriend(a: Member, b: Member) -> None:
    """Make ``a`` and ``b`` friends."""
    await a.friends.request(b.name)
    await b.friends.accept(a.name)


@dataclass
class ServerProcess:
    """A ``quicmeet-server`` running as a child process."""

    proc: subprocess.Popen[str]
    host: str
    port: int
    data_dir: Path
    cert: Path
    key: Path

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)


def start_server_process(
    tmp_path: Path,
    port: int = 0,
    extra: list[str] | None = None,
) -> ServerProcess:
    """Start ``python -m server`` and wait for its ``listening on`` line."""
    data_dir = tmp_path / "data"
    cert = tmp_path / "certs" / "cert.pem"
    key = tmp_path / "certs" / "key.pem"
    cmd = [
        sys.executable,
        "-m",
        "server",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--cert",
        str(cert),
        "--key",
        str(key),
        "--log-level",
        "warning",
        *(extra or []),
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("listening on "):
        proc.kill()
        _, err = proc.communicate(timeout=5)
        raise RuntimeError(f"server did not start: {line!r} {err}")
    host, _, port_text = line.split()[-1].rpartition(":")
    return ServerProcess(proc, host, int(port_text), data_dir, cert, key)


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[ServerProcess]:
    """A real server in a child process (for signals, restarts and the CLI)."""
    srv = start_server_process(tmp_path)
    yield srv
    if srv.proc.poll() is None:
        srv.proc.kill()
        srv.proc.wait(5)


async def eventually(predicate, timeout: float = 5.0, interval: float = 0.02) -> None:
    """Wait until ``predicate()`` is true, failing after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


async def next_of(session: Session, kind: type, timeout: float = 20.0) -> object:
    """The session's next event of type ``kind``, skipping others."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        event = await session.next_event(max(0.01, deadline - loop.time()))
        if isinstance(event, kind):
            return event


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, read in 4 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(4 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
