"""Password logins per second with concurrent clients, peak server RSS, and the
worst event-loop stall on the server while they run.

Each of C clients has its own account and connection and loops login, logout
for D seconds; every login is a full Argon2id verification on the server.
Prints one JSON object.

    python bench/logins.py --clients 50 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time

from _common import percentile, start_quicmeet_server  # noqa: I001

from client import Session

PASSWORD = "benchmark password"


async def run(clients: int, duration: float) -> dict:
    server = start_quicmeet_server()
    stats_file = server.workdir / "stats.json"
    peak_rss = 0
    try:
        sessions = []
        for i in range(clients):
            session = Session(server.address, reconnect=False)
            await session.connect()
            await session.register(f"login{i:03d}", PASSWORD)
            sessions.append(session)
        base_rss = server.rss_kib()
        server.proc.send_signal(signal.SIGUSR1)  # restart the stall window
        await asyncio.sleep(0.2)

        latencies: list[float] = []
        errors: dict[str, int] = {}
        stop_at = time.perf_counter() + duration

        async def worker(i: int, session: Session) -> None:
            while time.perf_counter() < stop_at:
                start = time.perf_counter()
                try:
                    await session.login(f"login{i:03d}", PASSWORD)
                except Exception as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    await asyncio.sleep(0.05)
                    continue
                latencies.append(time.perf_counter() - start)
                await session.logout()

        async def sample_rss() -> None:
            nonlocal peak_rss
            while time.perf_counter() < stop_at:
                peak_rss = max(peak_rss, server.rss_kib())
                await asyncio.sleep(0.05)

        started = time.perf_counter()
        await asyncio.gather(
            sample_rss(), *(worker(i, s) for i, s in enumerate(sessions))
        )
        elapsed = time.perf_counter() - started
        server.proc.send_signal(signal.SIGUSR1)
        await asyncio.sleep(0.3)
        stats = json.loads(stats_file.read_text())
        for session in sessions:
            await session.close()
    finally:
        server.stop()
    return {
        "clients": clients,
        "duration_s": round(elapsed, 2),
        "logins": len(latencies),
        "logins_per_s": round(len(latencies) / elapsed, 1),
        "login_latency_ms": {
            "p50": round(percentile(latencies, 50) * 1000, 1),
            "p99": round(percentile(latencies, 99) * 1000, 1),
        },
        "errors": errors,
        "server_rss_kib": {"before": base_rss, "peak": peak_rss},
        "server_worst_loop_stall_ms": stats["worst_loop_stall_ms"],
        "goals": {
            "worst_loop_stall_ms_max": 20,
            "met": stats["worst_loop_stall_ms"] <= 20,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.clients, args.duration)), indent=1))


if __name__ == "__main__":
    main()
