"""File transfer throughput, memory and instant upload, against bare aioquic.

Side by side in one run, over loopback: a 1 GiB upload and download through
quicmeet (server in its own process, both clients in this one), and the same
bytes through a bare aioquic stream to a bare aioquic server, on uvloop (as the
quicmeet server) and on asyncio's own loop; ratios are to the faster. Also:
peak RSS of the quicmeet server and of this client process during the
transfers, the time of an instant upload of the known 1 GiB file (offer +
proof, the client's full hash excluded), and the delivery latency of a chat
between two other users (in their own process) while an upload runs.
Prints one JSON object.

    python bench/files.py --size-mib 1024
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import ssl
import sys
import tempfile
import time
from pathlib import Path

from _common import (  # noqa: I001
    percentile,
    process_cpu_seconds,
    rss_kib,
    server_stats,
    start_child,
    start_quicmeet_server,
)
from aioquic.asyncio import QuicConnectionProtocol, connect
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration

from client import Session
from client.social import Chat, Friends
from client.store import LocalStore
from client.transfers import Transfers, file_sha256, ranges_proof
from codec.messages import (
    ChatMessage,
    FileOffer,
    FileStored,
    MessageAccepted,
    OfferFile,
    ProveFile,
    SendMessage,
)

PASSWORD = "benchmark password"
MiB = 1024 * 1024
WINDOW = 8 * MiB


class Sampler:
    """Peak RSS of some processes, sampled every 50 ms."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peak = {name: 0 for name in pids}
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], rss_kib(pid))
            await asyncio.sleep(0.05)

    def stop(self) -> dict[str, float]:
        self._task.cancel()
        return {name: round(kib / 1024, 1) for name, kib in self.peak.items()}


async def user(address: str, name: str, home: Path):
    home.mkdir(parents=True, exist_ok=True)
    session = Session(address, reconnect=False)
    store = LocalStore(home / "history.db")
    chat = Chat(session, store)
    transfers = Transfers(session, store, home / "downloads")
    await session.connect()
    await session.register(name, PASSWORD)
    await session.login(name, PASSWORD)
    return session, Friends(session), chat, transfers, store


class BareClient(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.done = asyncio.get_running_loop().create_future()
        self.received = 0
        self.expect = 0

    def quic_event_received(self, event):
        if isinstance(event, events.StreamDataReceived):
            self.received += len(event.data)
            if event.end_stream and not self.done.done():
                self.done.set_result(self.received)


class CpuMeter:
    """CPU seconds (user + system) a server process and this client process
    spend between :meth:`start` and :meth:`stop`, per MB carried: a figure
    that a busy machine disturbs far less than MB/s."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self._start = (0.0, 0.0)

    def start(self) -> None:
        self._start = (process_cpu_seconds(self.server_pid), process_cpu_seconds())

    def stop(self, size: int) -> dict[str, float]:
        server = process_cpu_seconds(self.server_pid) - self._start[0]
        client = process_cpu_seconds() - self._start[1]
        return {
            "server_cpu_ms_per_mb": round(server * 1e3 / (size / 1e6), 2),
            "client_cpu_ms_per_mb": round(client * 1e3 / (size / 1e6), 2),
        }


async def bare_transfer(
    host: str, port: int, path: Path, size: int, cpu: CpuMeter
) -> dict:
    configuration = QuicConfiguration(
        is_client=True, alpn_protocols=["quicmeet/1"], idle_timeout=30.0
    )
    configuration.verify_mode = ssl.CERT_NONE
    loop = asyncio.get_running_loop()
    async with connect(
        host, port, configuration=configuration, create_protocol=BareClient
    ) as client:
        quic = client._quic
        sid = quic.get_next_available_stream_id()
        cpu.start()
        start = time.perf_counter()
        with open(path, "rb") as fh:
            sent = 0
            while sent < size:
                stream = quic._streams.get(sid)
                while stream is not None and len(stream.sender._buffer) > WINDOW:
                    await asyncio.sleep(0.001)
                chunk = await loop.run_in_executor(None, fh.read, 256 * 1024)
                sent += len(chunk)
                quic.send_stream_data(sid, chunk, sent >= size)
                client.transmit()
        await client.done
        upload_s = time.perf_counter() - start
        upload_cpu = cpu.stop(size)
    async with connect(
        host, port, configuration=configuration, create_protocol=BareClient
    ) as client:
        sid = client._quic.get_next_available_stream_id()
        cpu.start()
        start = time.perf_counter()
        client._quic.send_stream_data(sid, b"GET %d\n" % size, True)
        client.transmit()
        await client.done
        download_s = time.perf_counter() - start
        download_cpu = cpu.stop(size)
    return {
        "upload_mb_s": round(size / upload_s / 1e6, 2),
        "download_mb_s": round(size / download_s / 1e6, 2),
        "upload_cpu": upload_cpu,
        "download_cpu": download_cpu,
    }


async def run(size: int, workdir: Path, trace: Path | None = None) -> dict:
    source = workdir / "payload.bin"
    block = os.urandom(MiB)
    with open(source, "wb") as fh:
        for i in range(size // MiB):
            fh.write(i.to_bytes(8, "big") + block[8:])
        fh.write(os.urandom(size % MiB))
    result: dict = {"size_bytes": size}

    if trace is not None:
        # Imported only here: bench/throughput_history.py runs this file
        # against older checkouts, whose code it may not know.
        import _send_trace

        trace.mkdir(parents=True, exist_ok=True)
        _send_trace.install()
        os.environ["BENCH_TRACE_SERVER"] = str(trace / "server_quicmeet.json")
    server = start_quicmeet_server(["--chat-rate", "1000"])
    sampler = Sampler({"server": server.proc.pid, "client": os.getpid()})
    try:
        a = await user(server.address, "sender", workdir / "a")
        b = await user(server.address, "recipient", workdir / "b")
        c = await user(server.address, "other", workdir / "c")
        for one, two in ((a, b), (c, b)):
            await one[1].request(two[0].profile.username)
            await two[1].accept(one[0].profile.username)

        hash_start = time.perf_counter()
        sha256 = await asyncio.get_running_loop().run_in_executor(
            None, file_sha256, source
        )
        hash_s = time.perf_counter() - hash_start

        udp_before = await server_stats(server)
        cpu = CpuMeter(server.proc.pid)
        cpu.start()
        start = time.perf_counter()
        sent = await a[3].send("recipient", source)
        upload_s = time.perf_counter() - start - hash_s
        upload_cpu = cpu.stop(size)
        assert sent.state == "done" and not sent.instant
        udp_after = await server_stats(server)
        received = udp_after.get("udp_datagrams_received", 0) - udp_before.get(
            "udp_datagrams_received", 0
        )
        acks = udp_after.get("udp_datagrams_sent", 0) - udp_before.get(
            "udp_datagrams_sent", 0
        )

        b_proto = await b[0].wait_ready(5)
        b_udp = getattr(b_proto, "udp_stats", {})  # older checkouts have none
        cpu.start()
        start = time.perf_counter()
        offered = (await b[3].remote())[0]
        got = await b[3].download(offered.file_id, workdir / "b" / "got.bin")
        download_s = time.perf_counter() - start
        download_cpu = cpu.stop(size)
        assert got.state == "done"
        b_after = getattr(b_proto, "udp_stats", {})
        b_received = b_after.get("datagrams_received", 0) - b_udp.get(
            "datagrams_received", 0
        )
        b_sent = b_after.get("datagrams_sent", 0) - b_udp.get("datagrams_sent", 0)
        if trace is not None:
            _send_trace.dump(str(trace / "client_quicmeet.json"))

        # Chat latency while another upload (of other content) runs.
        other = workdir / "other.bin"
        with open(source, "rb") as src, open(other, "wb") as dst:
            dst.write(b"other content")
            while chunk := src.read(MiB):
                dst.write(chunk)
        chatter = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--chat-only",
            server.address,
            str(workdir / "chat"),
            stdout=asyncio.subprocess.PIPE,
        )
        assert chatter.stdout is not None
        assert (await chatter.stdout.readline()).strip() == b"chatting"
        await server_stats(server)  # the worst loop stall restarts here
        second = await a[3].send("recipient", other)
        chat_stall_ms = (await server_stats(server)).get("worst_loop_stall_ms")
        chatter.send_signal(signal.SIGTERM)
        chat_result = json.loads(await chatter.stdout.read())
        await chatter.wait()
        assert second.state == "done" and not second.instant

        start = time.perf_counter()
        offer = await c[0].call(
            OfferFile,
            FileOffer,
            to="recipient",
            name="copy.bin",
            size=size,
            sha256=sha256,
        )
        proof = ranges_proof(
            source, offer.nonce, [(r.offset, r.length) for r in offer.ranges]
        )
        stored = await c[0].call(
            ProveFile, FileStored, file_id=offer.file_id, proof=proof
        )
        instant_s = time.perf_counter() - start
        assert stored.instant

        result["quicmeet"] = {
            "upload_mb_s": round(size / upload_s / 1e6, 2),
            "download_mb_s": round(size / download_s / 1e6, 2),
            "client_hash_s": round(hash_s, 2),
            "upload_cpu": upload_cpu,
            "download_cpu": download_cpu,
        }
        # Packets this process (the clients) built on the short stream path
        # (older checkouts have none).
        short = sys.modules.get("udpio.short_path")
        if short is not None:
            result["quicmeet"]["client_short_stream_packets"] = short.ShortStreams.sent
        result["peak_rss_mb"] = sampler.stop()
        result["instant_upload_ms"] = round(instant_s * 1000, 1)
        result["chat_during_upload_ms"] = chat_result
        result["server_worst_loop_stall_during_chat_ms"] = chat_stall_ms
        # Datagrams per system call on the server's socket (servers without
        # the batching endpoint report none).
        stats = await server_stats(server)
        result["server_udp"] = {k: v for k, v in stats.items() if k.startswith("udp_")}
        if received:
            # What the server sends during an upload is almost all ACKs.
            result["upload_server_packets_per_received"] = round(acks / received, 3)
        # And the downloading client's (ACKs, with a progress frame every
        # 128 KiB written).
        if b_received:
            result["download_client_packets_per_received"] = round(
                b_sent / b_received, 3
            )
        for member in (a, b, c):
            await member[2].close()
            await member[0].close()
            member[4].close()
    finally:
        server.stop()

    # The bare baseline on both event loops: uvloop (the quicmeet server's)
    # and asyncio's own, whose finer clock spares aioquic's pacer the spin
    # udpio/pacing.py describes; ratios are to the faster of the two.
    for key, loop_name, trace_name in (
        ("bare_aioquic", "uvloop", "server_bare.json"),
        ("bare_aioquic_asyncio", "asyncio", "server_bare_asyncio.json"),
    ):
        bare_args = ["bench/_bare_stream.py", str(workdir / "cert.pem")]
        bare_args.append(str(workdir / "key.pem"))
        if trace is not None:
            bare_args[:0] = ["bench/_send_trace.py", str(trace / trace_name)]
        os.environ["BENCH_BARE_LOOP"] = loop_name
        bare = start_child(bare_args)
        try:
            result[key] = await bare_transfer(
                bare.host, bare.port, source, size, CpuMeter(bare.proc.pid)
            )
        finally:
            bare.stop()
            os.environ.pop("BENCH_BARE_LOOP")
    if trace is not None:
        _send_trace.dump(str(trace / "client_bare.json"))
    q = result["quicmeet"]
    bares = (result["bare_aioquic"], result["bare_aioquic_asyncio"])
    result["ratios"] = {}
    for direction in ("upload", "download"):
        best = max(bare[f"{direction}_mb_s"] for bare in bares)
        result["ratios"][direction] = round(q[f"{direction}_mb_s"] / best, 3)
    result["goals"] = {
        "throughput_ratio_min": 0.8,
        "peak_rss_mb_max": 100,
        "instant_upload_ms_max": 100,
        "chat_p99_ms_max": 100,
    }
    return result


async def chat_only(address: str, workdir: Path) -> dict:
    """Two other users chat (a message every 20 ms) until SIGTERM, from their own
    process as they would from their own machines; return delivery latencies."""
    x = await user(address, "chatx", workdir / "x")
    y = await user(address, "chaty", workdir / "y")
    await x[1].request("chaty")
    await y[1].accept("chatx")
    latencies: list[float] = []
    sent_at: dict[str, float] = {}

    def on_chat(event: object) -> None:
        if isinstance(event, ChatMessage) and event.client_id in sent_at:
            latencies.append(time.perf_counter() - sent_at[event.client_id])

    y[0].add_event_hook(on_chat)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("chatting", flush=True)
    n = 0
    while not stop.is_set():
        n += 1
        client_id = f"bench-{n}"
        sent_at[client_id] = time.perf_counter()
        await x[0].call(
            SendMessage, MessageAccepted, to="chaty", client_id=client_id, text="ping"
        )
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    return {
        "messages": len(latencies),
        "p50": round(percentile(latencies, 50) * 1000, 1),
        "p99": round(percentile(latencies, 99) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument(
        "--trace",
        type=Path,
        help="write why each side's QUIC sender stopped (bench/_send_trace.py) "
        "into this directory",
    )
    parser.add_argument(
        "--chat-only", nargs=2, metavar=("ADDRESS", "DIR"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.chat_only:
        address, directory = args.chat_only
        print(json.dumps(asyncio.run(chat_only(address, Path(directory)))), flush=True)
        return
    with tempfile.TemporaryDirectory(prefix="quicmeet-files-") as tmp:
        print(
            json.dumps(
                asyncio.run(run(args.size_mib * MiB, Path(tmp), args.trace)), indent=1
            )
        )


if __name__ == "__main__":
    main()
