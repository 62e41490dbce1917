"""Connections that hold many streams of incomplete frames cost the server
little memory, and what they cost comes back when they close."""

import asyncio
import contextlib

from tests.conftest import start_server_process

from .rawclient import raw_connect

CONNECTIONS = 8
STREAMS = 100
PARTIAL = 40_000
"""Bytes sent of each stream's announced 60,000-byte request frame."""


def memory_mb(pid: int) -> tuple[float, float]:
    """The process's resident memory now and at its peak, in MiB."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


async def test_incomplete_frames_on_many_streams_hold_little_memory(tmp_path):
    server = start_server_process(tmp_path)
    host, port = server.host, server.port
    try:
        async with raw_connect(host, port) as warmup:
            warmup.send_raw((60_000).to_bytes(4, "big") + b"w" * 100)
            await asyncio.sleep(0.2)
        baseline, _ = memory_mb(server.proc.pid)
        held = (60_000).to_bytes(4, "big") + b"h" * PARTIAL
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(CONNECTIONS):
                raw = await stack.enter_async_context(raw_connect(host, port))
                raw.send_raw(held)  # an incomplete control frame too
                ids = [raw.open_stream(held) for _ in range(STREAMS)]
                # Each stream is refused at its header, with an error and an
                # end (a server that buffers instead answers none of them).
                await raw.until(
                    lambda raw=raw, ids=ids: raw.stream_ended.issuperset(ids),
                    timeout=5,
                )
                assert raw.stream_ended.issuperset(ids)
            _, peak = memory_mb(server.proc.pid)
        await asyncio.sleep(0.5)
        now, _ = memory_mb(server.proc.pid)
        sent_mb = CONNECTIONS * STREAMS * PARTIAL / 2**20
        # What was sent is 30 MiB; held, it showed as 12 MiB or more of peak
        # memory even though the client could not send it all in time.
        assert peak - baseline < sent_mb / 8, (baseline, peak, sent_mb)
        assert now - baseline < sent_mb / 8, (baseline, now, sent_mb)
    finally:
        server.stop()
