"""What a few per-packet and per-batch costs take in CPU, on this machine, now.

- ``controller_us_per_packet``: quicmeet's congestion controller
  (``codec/media/cc``) driven as aioquic drives it during a bulk transfer:
  ``on_packet_sent`` for each packet the window allows, then ACKs of
  ``--ack-every`` packets (``on_packet_acked`` for each, one RTT sample),
  ``--packets`` packets in all; µs of CPU per packet sent and acknowledged
  (the driver's packet records built beforehand, so not counted; its loop
  is, a few tenths of a µs), best of three. The window and mode it ends
  with are printed too: a change meant as a pure speed-up leaves them alone.
- ``executor_read_ms_per_mb``: reading a file of ``--file-mib`` through
  ``loop.run_in_executor`` (as an upload does) in chunks of 64 and 256 KiB,
  and in the loop itself for comparison; ms of the process's CPU (both
  threads) per MB, page cache warm, best of three.

- ``chat_batch_bind_us``: the two query strings of a chat batch on a
  database shared by nodes (``server/chat_writes.py``), ``--batch``
  messages from as many senders and as many receipts, their parameters
  bound in the client by psycopg's own client-side cursor (which parses the
  query for its placeholders each time: the query is too long for its cache)
  and by ``server.chat_shared.bind``; µs of CPU per batch, best of three.
  Both must give the same bytes (checked).

    python bench/cpu_costs.py [--packets 60000] [--ack-every 60] [--file-mib 64]
        [--batch 16]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from aioquic.quic.packet_builder import QuicSentPacket
from aioquic.tls import Epoch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from codec.media.cc import MediaCongestionControl  # noqa: E402

MSS = 1450
SEND_SPACING_S = 0.00002
ACK_SPACING_S = 0.001


def controller_cost(packets: int, ack_every: int) -> tuple[float, int, str]:
    """µs of CPU per packet sent and acknowledged; the final window and mode."""
    records = [
        QuicSentPacket(
            epoch=Epoch.ONE_RTT,
            in_flight=True,
            is_ack_eliciting=True,
            is_crypto_packet=False,
            packet_number=number,
            packet_type=0,
            sent_bytes=MSS,
        )
        for number in range(packets)
    ]
    cc = MediaCongestionControl(max_datagram_size=MSS)
    now = 0.0
    sent = 0
    in_flight: list[QuicSentPacket] = []
    start = time.process_time()
    while sent < packets:
        burst = 0
        while sent < packets and burst < 200:
            if cc.bytes_in_flight + MSS > cc.congestion_window:
                break
            packet = records[sent]
            packet.sent_time = now
            cc.on_packet_sent(packet=packet)
            in_flight.append(packet)
            sent += 1
            burst += 1
            now += SEND_SPACING_S
        now += ACK_SPACING_S
        acked, in_flight = in_flight[:ack_every], in_flight[ack_every:]
        for packet in acked:
            cc.on_packet_acked(now=now, packet=packet)
        if acked:
            cc.on_rtt_measurement(now=now, rtt=now - (acked[-1].sent_time or 0.0))
    spent = time.process_time() - start
    return spent / packets * 1e6, cc.congestion_window, cc.mode.value


async def _read_all(path: Path, chunk: int, executor: bool) -> float:
    loop = asyncio.get_running_loop()
    with open(path, "rb", buffering=0) as handle:
        total = 0
        start = time.process_time()
        while True:
            if executor:
                data = await loop.run_in_executor(None, handle.read, chunk)
            else:
                data = handle.read(chunk)
            if not data:
                break
            total += len(data)
        return (time.process_time() - start) / (total / 1e6) * 1e3


def executor_cost(file_mib: int) -> dict[str, float]:
    """ms of CPU per MB read, by way and chunk size."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "file.bin"
        block = os.urandom(1 << 20)
        with open(path, "wb") as handle:
            for _ in range(file_mib):
                handle.write(block)
        ways = {
            "executor_64k": (64 * 1024, True),
            "executor_256k": (256 * 1024, True),
            "loop_64k": (64 * 1024, False),
        }
        return {
            name: round(
                min(asyncio.run(_read_all(path, chunk, ex)) for _ in range(3)), 3
            )
            for name, (chunk, ex) in ways.items()
        }


def _chat_batch_queries(batch: int) -> list[tuple[str, list[object]]]:
    """Both queries of a chat batch of ``batch`` messages (from as many
    senders) and as many receipts, in PostgreSQL's SQL."""
    import peewee

    from server.chat_writes import shared_read_query, shared_write_query
    from server.storage import models

    before = models.database.obj
    models.database.initialize(peewee.PostgresqlDatabase("bench"))  # its SQL only
    try:
        senders = range(1, batch + 1)
        return [
            shared_read_query(
                set(),
                {(s, s + 1000) for s in senders},
                {s: {f"{s}-{time.time_ns()}"} for s in senders},
                {(s + 1000, s) for s in senders},
            ),
            shared_write_query(
                [
                    (s, 1000 + s, s, s + 1000, f"{s}-{n}", f"it's {s}", 1_700_000)
                    for n, s in enumerate(senders)
                ],
                {s: 1000 + s for s in senders},
                {(s + 1000, s): (1000 + s, 999 + s) for s in senders},
            ),
        ]
    finally:
        models.database.initialize(before)


def chat_bind_cost(batch: int) -> dict[str, float]:
    """µs of CPU per chat batch to bind both queries' parameters: psycopg's
    client-side binding against ``server.chat_shared.bind``."""
    from psycopg._queries import PostgresClientQuery
    from psycopg.adapt import Transformer

    from server.chat_shared import bind

    queries = _chat_batch_queries(batch)
    literals = Transformer()

    def theirs(query: str, params: list[object]) -> bytes:
        converted = PostgresClientQuery(literals)
        converted.convert(query, params)
        return converted.query

    def ours(query: str, params: list[object]) -> bytes:
        return bind(query, params, literals)

    assert all(theirs(*q) == ours(*q) for q in queries)
    costs = {}
    for name, way in (("psycopg", theirs), ("quicmeet", ours)):
        best = float("inf")
        for _ in range(3):
            start = time.process_time()
            for _ in range(200):
                for query in queries:
                    way(*query)
            best = min(best, (time.process_time() - start) / 200 * 1e6)
        costs[name] = round(best, 1)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=60000)
    parser.add_argument("--ack-every", type=int, default=60)
    parser.add_argument("--file-mib", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    if min(args.packets, args.ack_every, args.file_mib, args.batch) < 1:
        parser.error("--packets, --ack-every, --file-mib and --batch must be positive")
    runs = [controller_cost(args.packets, args.ack_every) for _ in range(3)]
    best = min(run[0] for run in runs)
    _, window, mode = runs[0]
    print(
        json.dumps(
            {
                "controller_us_per_packet": round(best, 3),
                "controller_final_window": window,
                "controller_final_mode": mode,
                "executor_read_ms_per_mb": executor_cost(args.file_mib),
                "chat_batch_bind_us": chat_bind_cost(args.batch),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
