"""Argon2id password hashing in a bounded executor.

Hashing costs about 19 MiB and tens of milliseconds of CPU per call, so it never
runs on the event loop: at most ``max_concurrent`` hashes run at once (bounding
memory) and at most ``max_waiting`` wait; past that the caller gets ``BUSY``
with a retry hint instead of an ever-growing queue.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import nacl.exceptions
import nacl.pwhash.argon2id as argon2id

from codec.errors import ErrorCode

from .errors import ServiceError

__all__ = ["PasswordHasher"]

DEFAULT_OPSLIMIT = 2
DEFAULT_MEMLIMIT = 19 * 1024 * 1024
_PARAMS = re.compile(rb"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$")


class PasswordHasher:
    """Hashes and verifies passwords with Argon2id off the event loop."""

    def __init__(
        self,
        opslimit: int = DEFAULT_OPSLIMIT,
        memlimit: int = DEFAULT_MEMLIMIT,
        max_concurrent: int = 2,
        max_waiting: int = 64,
    ) -> None:
        self.opslimit = opslimit
        self.memlimit = memlimit
        self.max_waiting = max_waiting
        self._executor = ThreadPoolExecutor(
            max_workers=max_concurrent,
            thread_name_prefix="argon2",
            initializer=_lower_priority,
        )
        self._semaphore = asyncio.Semaphore(max_concurrent)
        self._waiting = 0
        self._dummy_hash: bytes | None = None

    async def _run(self, fn, *args):  # type: ignore[no-untyped-def]
        if self._waiting >= self.max_waiting:
            raise ServiceError(
                ErrorCode.BUSY, "too many logins at once, retry shortly", 500
            )
        self._waiting += 1
        try:
            async with self._semaphore:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(self._executor, fn, *args)
        finally:
            self._waiting -= 1

    async def hash(self, password: str) -> str:
        """Return the Argon2id hash string of ``password`` (with its parameters)."""
        encoded = await self._run(
            argon2id.str, password.encode(), self.opslimit, self.memlimit
        )
        return encoded.decode("ascii")  # type: ignore[no-any-return]

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Say whether ``password`` matches ``password_hash``.

        With ``password_hash`` None (unknown user) a dummy hash is verified instead,
        so the answer takes as long as for a real account.
        """
        if password_hash is None:
            if self._dummy_hash is None:
                self._dummy_hash = (await self.hash("dummy password")).encode()
            await self._run(_verify, self._dummy_hash, password.encode())
            return False
        return await self._run(  # type: ignore[no-any-return]
            _verify, password_hash.encode("ascii"), password.encode()
        )

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than the current ones."""
        match = _PARAMS.match(password_hash.encode("ascii"))
        if match is None:
            return True
        memory_kib, ops = int(match.group(1)), int(match.group(2))
        return memory_kib * 1024 != self.memlimit or ops != self.opslimit

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _lower_priority() -> None:
    """Make a hashing thread yield the CPU to the event loop when both want it
    (Linux lets each thread have its own nice value)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass


def _verify(password_hash: bytes, password: bytes) -> bool:
    try:
        return bool(argon2id.verify(password_hash, password))
    except nacl.exceptions.InvalidkeyError:
        return False
    except nacl.exceptions.RuntimeError:
        return False
