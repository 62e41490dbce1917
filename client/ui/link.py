"""The window's end of the channel to the engine process.

:class:`EngineLink` starts the engine (``python -m client.engine``) with one
end of a socket pair, and is the only way across:

* Tk → engine: :meth:`EngineLink.call` sends a command and returns a
  ``concurrent.futures.Future``; its outcome also comes back to the Tk thread
  as a :class:`CommandDone`, after every event the command posted, so a
  view's callback always runs on the Tk thread.
* engine → Tk: :meth:`EngineLink.drain` (Tk thread, every UI tick) reads
  what arrived without waiting, decodes it and hands it to the app in
  batches under a time budget.

The UI process runs no Python thread besides Tk's: a collection of garbage
started on another thread could finalize a destroyed view's Tk variables
there, and tkinter then blocks that thread waiting for the Tk loop.

When the engine process ends on its own, every unanswered command fails with
:class:`~client.engine.errors.EngineStopped` and an :class:`EngineExited`
event is queued; the app then calls :meth:`EngineLink.restart`.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import select
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from ..engine.channel import FrameReader, Oversized, decode_up, encode_request
from ..engine.errors import EngineStopped, from_failure
from ..engine.messages import EVENT_TYPES, Command, EventMessage, Failure, Reply
from ..engine.model import UiEvent

__all__ = ["CommandDone", "EngineExited", "EngineLink"]

log = logging.getLogger("quicmeet.ui.link")

CLOSE_S = 2.0
"""How long closing waits for the engine to exit before it is killed (it
signs off within :data:`client.engine.service.CLOSE_S`; this is the bound
for an engine that hangs)."""


@dataclass(frozen=True, slots=True)
class CommandDone:
    """A command finished: call ``on_done`` with its value or ``on_error``
    with its error (the Tk thread)."""

    on_done: Callable[[Any], None] | None
    on_error: Callable[[BaseException], None] | None
    value: Any = None
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class EngineExited:
    """The engine process ended without being asked to (``returncode`` as
    ``subprocess`` gives it: negative for a signal)."""

    returncode: int | None


@dataclass
class _Pending:
    command: Command
    on_done: Callable[[Any], None] | None
    on_error: Callable[[BaseException], None] | None
    future: concurrent.futures.Future[Any]


Item = UiEvent | CommandDone | EngineExited


class EngineLink:
    """One engine process for the data folder ``home``, and the channel to it."""

    def __init__(
        self,
        home: Path,
        *,
        ca_file: Path | None = None,
        idle_timeout: float = 5.0,
    ) -> None:
        self.home = home
        self.ca_file = ca_file
        self.idle_timeout = idle_timeout
        self.events: deque[Item] = deque()
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        """How many times the engine was started again after it died."""
        self.refused = 0
        """Frames from the engine that were not messages of the channel."""
        self._sock: socket.socket | None = None
        self._reader = FrameReader()
        self._pending: dict[int, _Pending] = {}
        self._rids = itertools.count(1)

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        """Start the engine process."""
        ours, theirs = socket.socketpair()
        command = [
            sys.executable, "-m", "client.engine",
            "--fd", str(theirs.fileno()),
            "--home", str(self.home),
            "--idle-timeout", str(self.idle_timeout),
        ]  # fmt: skip
        if self.ca_file is not None:
            command += ["--ca", str(self.ca_file)]
        self.proc = subprocess.Popen(command, pass_fds=[theirs.fileno()])
        theirs.close()
        ours.setblocking(False)
        self._sock = ours
        self._reader = FrameReader()

    def restart(self) -> None:
        """Start a new engine after the last one died."""
        self._reap()
        self.restarts += 1
        self.start()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def close(self, timeout: float = CLOSE_S) -> None:
        """Close the channel; the engine signs off and exits (killed if it has
        not within ``timeout`` seconds)."""
        self._reap(timeout)

    def _reap(self, timeout: float = CLOSE_S) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        proc = self.proc
        if proc is None:
            return
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("the engine did not exit in %.1f s; killing it", timeout)
            proc.kill()
            proc.wait(5)
        self._fail_pending()

    # -- Tk → engine --------------------------------------------------------------

    def call(
        self,
        command: Command,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> concurrent.futures.Future[Any]:
        """Send ``command``; its outcome comes back as a :class:`CommandDone`."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        rid = next(self._rids)
        self._pending[rid] = _Pending(command, on_done, on_error, future)
        try:
            self.send_raw(encode_request(rid, command))
        except OSError:
            self._finish(rid, error=EngineStopped("the engine is not running"))
        return future

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (tests send malformed frames with it).

        Commands are small and the engine reads at once, so this does not
        wait in practice; a blocked engine would be a dead one."""
        sock = self._sock
        if sock is None:
            raise OSError("no engine")
        sock.setblocking(True)
        try:
            sock.sendall(data)
        finally:
            sock.setblocking(False)

    # -- engine → Tk --------------------------------------------------------------

    def _receive(self) -> None:
        """Take in what the engine sent, without waiting."""
        sock = self._sock
        if sock is None:
            return
        while True:
            try:
                data = sock.recv(256 * 1024)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._engine_gone()
                return
            for payload in self._reader.feed(data):
                self._handle_frame(payload)

    def _engine_gone(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        proc = self.proc
        returncode = None
        if proc is not None:
            try:
                # The channel closes as the process ends: nothing to wait for.
                returncode = proc.wait(CLOSE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                returncode = proc.wait(5)
        self._fail_pending()
        self.events.append(EngineExited(returncode))

    def _handle_frame(self, payload: bytes | Oversized) -> None:
        try:
            if isinstance(payload, Oversized):
                raise msgspec.DecodeError(f"a frame of {payload.length} bytes")
            message = decode_up(payload)
            if isinstance(message, EventMessage):
                event_type = EVENT_TYPES.get(message.kind)
                if event_type is None:
                    raise msgspec.DecodeError(f"unknown event {message.kind!r}")
                self.events.append(
                    msgspec.msgpack.decode(message.body, type=event_type)
                )
            elif isinstance(message, Reply):
                pending = self._pending.get(message.rid)
                if pending is None:
                    raise msgspec.DecodeError(f"a reply to no request {message.rid}")
                value = msgspec.msgpack.decode(
                    message.value, type=type(pending.command).result or Any
                )
                self._finish(message.rid, value=value)
            else:
                self._on_failure(message)
        except msgspec.DecodeError as exc:
            self.refused += 1
            log.error("refused a frame from the engine: %s", exc)

    def _on_failure(self, failure: Failure) -> None:
        error = from_failure(failure.kind, failure.message, failure.details)
        if failure.rid is None:
            log.error("the engine refused a frame: %s", failure.message)
            self.refused += 1
            return
        self._finish(failure.rid, error=error)

    def _finish(
        self, rid: int, value: Any = None, error: Exception | None = None
    ) -> None:
        pending = self._pending.pop(rid, None)
        if pending is None:
            return
        self.events.append(CommandDone(pending.on_done, pending.on_error, value, error))
        if error is None:
            pending.future.set_result(value)
        else:
            pending.future.set_exception(error)

    def _fail_pending(self) -> None:
        for rid in list(self._pending):
            self._finish(rid, error=EngineStopped("the engine stopped"))

    def wait(self, future: concurrent.futures.Future[Any], timeout: float) -> Any:
        """Wait for ``future``'s command to be answered and return its value
        (before the Tk loop runs: the app's first settings). Raises its error,
        or ``TimeoutError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not future.done():
            left = deadline - time.monotonic()
            if left <= 0 or self._sock is None:
                break
            select.select([self._sock], [], [], left)
            self._receive()
        if not future.done():
            raise TimeoutError(f"the engine did not answer in {timeout:.0f} s")
        return future.result()

    def drain(self, handle: Callable[[Item], None], budget_s: float = 0.008) -> int:
        """Hand queued items to ``handle`` until the queue is empty or
        ``budget_s`` is spent (Tk thread); return how many were handled."""
        self._receive()
        deadline = time.perf_counter() + budget_s
        handled = 0
        while True:
            try:
                item = self.events.popleft()
            except IndexError:
                return handled
            handled += 1
            handle(item)
            if time.perf_counter() >= deadline:
                return handled
