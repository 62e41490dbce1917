"""The thread boundary of the desktop client.

Tk owns the main thread; the client core (asyncio, QUIC, the local store) runs
on one event loop in a thread beside it. :class:`Bridge` is the only way across:

* Tk → network: :meth:`Bridge.call` schedules a coroutine on the loop with
  ``run_coroutine_threadsafe`` and returns its ``concurrent.futures.Future``.
  Its outcome also comes back to the Tk thread as a :class:`CommandDone` event,
  so a view's callback always runs on the Tk thread.
* network → Tk: :meth:`Bridge.post` (loop thread only) puts UI events on a
  bounded ``queue.Queue``; :meth:`Bridge.drain` (Tk thread, from ``after()``)
  hands them to the app in batches under a time budget.

The loop thread never blocks on the queue: when it is full, events wait in an
overflow list on the loop's side (where a newer snapshot replaces an older one
with the same coalescing key) and are moved over as the Tk side drains.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .model import UiEvent, coalescing_key

__all__ = ["Bridge", "CommandDone"]

log = logging.getLogger("quicmeet.ui.bridge")

T = TypeVar("T")

DEFAULT_QUEUE_SIZE = 1000
OVERFLOW_RETRY_S = 0.005


@dataclass(frozen=True, slots=True)
class CommandDone:
    """A command finished: call ``callback`` with its result or its error."""

    on_done: Callable[[Any], None] | None
    on_error: Callable[[BaseException], None] | None
    value: Any = None
    error: BaseException | None = None


class Bridge:
    """One asyncio loop in its own thread, and the queue of UI events from it."""

    def __init__(self, max_events: int = DEFAULT_QUEUE_SIZE, nice: int = 0) -> None:
        """``nice`` lowers the CPU priority of the loop thread and of every
        thread it starts (Linux; elsewhere it is ignored)."""
        self.nice = nice
        self.events: queue.Queue[UiEvent | CommandDone] = queue.Queue(max_events)
        self.loop = asyncio.new_event_loop()
        self._overflow: deque[UiEvent | CommandDone] = deque()
        self._flush_scheduled = False
        self._thread = threading.Thread(
            target=self._run, name="quicmeet-client", daemon=True
        )
        self.overflowed = 0
        """How many events had to wait in the overflow list (for tests, benches)."""

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        """Start the loop thread; call :meth:`stop` before the process exits."""
        self._thread.start()

    def _run(self) -> None:
        if self.nice and sys.platform == "linux":
            # Linux keeps a nice value per thread; threads inherit it.
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
            except OSError as exc:
                log.warning("could not lower the loop thread's priority: %s", exc)
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def stop(self, cleanup: Callable[[], Awaitable[None]] | None = None) -> None:
        """Run ``cleanup`` on the loop, cancel what is left, stop the thread."""
        if not self._thread.is_alive():
            return

        async def _shutdown() -> None:
            if cleanup is not None:
                try:
                    await asyncio.wait_for(cleanup(), 5.0)
                except Exception:
                    log.exception("closing the client core failed")
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(_shutdown(), self.loop).result(10.0)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10.0)

    # -- Tk → loop --------------------------------------------------------------

    def run(self, coro: Awaitable[T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop; nothing comes back through the queue."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]

    def call(
        self,
        command: Callable[[], Awaitable[T]],
        on_done: Callable[[T], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> concurrent.futures.Future[T]:
        """Run ``command()`` on the loop; its result or error comes back to the Tk
        thread as a :class:`CommandDone`, after every event it posted."""

        async def _command() -> T:
            try:
                value = await command()
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                self.post(CommandDone(on_done, on_error, error=exc))
                raise
            self.post(CommandDone(on_done, on_error, value=value))
            return value

        return asyncio.run_coroutine_threadsafe(_command(), self.loop)

    # -- loop → Tk --------------------------------------------------------------

    def post(self, event: UiEvent | CommandDone) -> None:
        """Queue ``event`` for the Tk thread (loop thread only; never blocks)."""
        if not self._overflow:
            try:
                self.events.put_nowait(event)
                return
            except queue.Full:
                pass
        self.overflowed += 1
        key = coalescing_key(event) if not isinstance(event, CommandDone) else None
        if key is not None:
            for index, waiting in enumerate(self._overflow):
                if not isinstance(waiting, CommandDone) and (
                    coalescing_key(waiting) == key
                ):
                    del self._overflow[index]
                    break
        self._overflow.append(event)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_later(OVERFLOW_RETRY_S, self._flush_overflow)

    def _flush_overflow(self) -> None:
        self._flush_scheduled = False
        while self._overflow:
            try:
                self.events.put_nowait(self._overflow[0])
            except queue.Full:
                self._flush_scheduled = True
                self.loop.call_later(OVERFLOW_RETRY_S, self._flush_overflow)
                return
            self._overflow.popleft()

    def drain(
        self,
        handle: Callable[[UiEvent | CommandDone], None],
        budget_s: float = 0.008,
    ) -> int:
        """Hand queued events to ``handle`` until the queue is empty or ``budget_s``
        is spent (Tk thread); return how many were handled."""
        deadline = time.perf_counter() + budget_s
        handled = 0
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return handled
            handled += 1
            handle(event)
            if time.perf_counter() >= deadline:
                return handled
