"""Running ``quicmeet-cli`` as a child process, the way scripts use it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import PASSWORD, ROOT, ServerProcess

__all__ = ["cli_args", "cli_env", "run", "spawn", "stop"]


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUICMEET_")}
    return {**env, "QUICMEET_PASSWORD": PASSWORD, "PYTHONUNBUFFERED": "1"}


def cli_args(server: ServerProcess, home: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "client",
        "--server",
        server.address,
        "--home",
        str(home),
        *args,
    ]


def run(
    server: ServerProcess, home: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_args(server, home, *args),
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def spawn(server: ServerProcess, home: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli_args(server, home, *args),
        cwd=ROOT,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def stop(proc: subprocess.Popen[str]) -> None:
    """Kill ``proc`` if it still runs, and close its pipes."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(5)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
