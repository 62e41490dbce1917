"""Real PostgreSQL and Redis servers for tests, each in its own temporary
directory on a free loopback port, stopped (and the directory removed) after.

PostgreSQL refuses to run as root, and CI runs as root: then ``initdb`` and
``postgres`` are started as the ``postgres`` user (Debian's package creates it)
in a directory that user owns. Nothing here touches the system-wide services.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

import psycopg

__all__ = ["PostgresServer", "RedisServer", "free_tcp_port"]

PG_ROOT = Path("/usr/lib/postgresql")
"""Debian keeps each major version's programs under ``<version>/bin``."""
START_TIMEOUT = 30.0


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_binary(name: str) -> str:
    """``name`` from the newest PostgreSQL under :data:`PG_ROOT`, else on PATH."""
    found = [p for p in PG_ROOT.glob(f"*/bin/{name}") if p.parts[-3].isdigit()]
    if found:
        return str(max(found, key=lambda p: int(p.parts[-3])))
    on_path = shutil.which(name)
    if on_path is None:
        raise RuntimeError(
            f"PostgreSQL's {name} is not installed (apt-get install postgresql)"
        )
    return on_path


class PostgresServer:
    """A throwaway PostgreSQL cluster; :meth:`create_database` gives each test
    its own database. Durability is off (``fsync=off``): tests never outlive a
    power cut, and it keeps them quick."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="quicmeet-pg-"))
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)
        self._as_user: dict[str, object] = {}
        self._log: IO[bytes] | None = None
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as_user = {
                "user": owner.pw_uid,
                "group": owner.pw_gid,
                "extra_groups": [],
            }

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while it runs (benchmarks read its CPU)."""
        return self._proc.pid if self._proc is not None else None

    def url(self, database: str = "postgres") -> str:
        """The ``postgresql://`` URL of ``database`` on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Create the cluster and start the server; returns once it accepts."""
        subprocess.run(
            [
                _pg_binary("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
            cwd=self.root,  # the postgres user may not enter the caller's directory
            **self._as_user,  # type: ignore[arg-type]
        )
        self.port = free_tcp_port()
        self._log = open(self.root / "server.log", "wb")  # noqa: SIM115
        self._proc = subprocess.Popen(
            [
                _pg_binary("postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(self.port),
                "-k",
                str(self.root),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "synchronous_commit=off",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            cwd=self.root,
            **self._as_user,  # type: ignore[arg-type]
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    log = (self.root / "server.log").read_text(errors="replace")
                    self.stop()
                    raise RuntimeError(f"PostgreSQL did not start:\n{log}") from None
                time.sleep(0.1)

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        name = f"test_{next(self._names)}"
        # FILE_COPY: copying the small template's files beats writing it all
        # to the WAL (PostgreSQL 15's default) several times over.
        self.sql(f"CREATE DATABASE {name} STRATEGY = FILE_COPY")
        return self.url(name)

    def sql(self, statement: str, database: str = "postgres") -> list[tuple]:
        """Run one statement (autocommit) and return its rows, if any."""
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory."""
        if self._proc is not None and self._proc.poll() is None:
            # SIGINT is PostgreSQL's "fast" shutdown.
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self._log is not None:
            self._log.close()
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """A throwaway Redis server without persistence, on a free port."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="quicmeet-redis-"))
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (benchmarks read its CPU)."""
        return self._proc.pid if self._proc is not None else None

    def start(self, port: int | None = None) -> None:
        """Start the server (on ``port``, else a free one); returns once it
        answers PING. Start again after :meth:`stop` to restart it."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install it)")
        self.root.mkdir(exist_ok=True)
        self.port = port or free_tcp_port()
        self._log = open(self.root / "server.log", "wb")  # noqa: SIM115
        self._proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.root),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                log = (self.root / "server.log").read_text(errors="replace")
                self.stop()
                raise RuntimeError(f"Redis did not start:\n{log}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self._log is not None:
            self._log.close()
        shutil.rmtree(self.root, ignore_errors=True)
