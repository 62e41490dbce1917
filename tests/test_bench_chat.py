"""What ``bench/chat.py`` and ``bench/cluster.py`` time a message with: the
paced senders and the load generator's heap between phases."""

from __future__ import annotations

import gc
import time
import weakref

import pytest

from codec.messages import MessageAccepted, Ok
from tests.conftest import address


async def test_paced_sends_wait_for_every_reply_and_raise_a_wrong_one(server, bench):
    chat = bench("chat")  # bench/chat.py
    [(sender, recipient, _, to)] = await chat.setup(address(server), 1)
    try:
        proto = await sender.wait_ready(1)
        replies: list[float] = []
        stop_at = time.perf_counter() + 0.3
        sent = await chat.send_paced_on(
            proto, to, stop_at, 100, "t", MessageAccepted, replies
        )
        assert 10 <= sent <= 31  # 0.3 s at 100/s, fewer if it started late
        assert len(replies) == sent  # each one answered before the return
        # A reply of another type than expected fails the phase.
        with pytest.raises(AssertionError):
            await chat.send_paced_on(proto, to, time.perf_counter() + 0.2, 100, "u", Ok)
    finally:
        await sender.close()
        await recipient.close()


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_freeze_heap_freezes_what_is_held_and_collects_it_once_dropped(bench):
    freeze_heap = bench("_common").freeze_heap
    held = _Cycle()
    gone = weakref.ref(held)
    try:
        freeze_heap()
        assert gc.get_freeze_count() > 0
        del held
        gc.collect()
        assert gone() is not None  # frozen: the collector does not walk it
        freeze_heap()  # the next phase's: unfreezes, collects, freezes
        assert gone() is None
    finally:
        gc.unfreeze()
