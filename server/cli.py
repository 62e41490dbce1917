"""``quicmeet-server``: run the server with its embedded defaults."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path

from . import backup_cli
from .app import ServerApp
from .cluster import ClusterUnavailable
from .config import ServerConfig
from .drain import drain
from .heap import HeapFreezer
from .storage import StorageUnavailable

__all__ = ["main", "parse_args"]


_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def _size(text: str) -> int:
    """A byte count such as ``8GiB``, ``500MB`` or ``1048576``."""
    number = text.strip().lower()
    unit = number.lstrip("0123456789.")
    value = number[: len(number) - len(unit)]
    if unit.strip() not in _UNITS or not value:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a size: use a number with B, KB, MB, GB, KiB, MiB or GiB"
        )
    size = int(float(value) * _UNITS[unit.strip()])
    if size <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 bytes")
    return size


def parse_args(argv: list[str] | None = None) -> ServerConfig:
    parser = argparse.ArgumentParser(
        prog="quicmeet-server",
        description="quicmeet server: accounts, chat, files and meetings over QUIC",
        epilog="`quicmeet-server backup --help` and `quicmeet-server restore --help` "
        "copy a server's state out and back in",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=4433, help="UDP port (0 picks a free one)"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=Path("data"), help="database and files"
    )
    parser.add_argument(
        "--db",
        default=None,
        help="database URL (default: SQLite in --data-dir), e.g. postgresql://...",
    )
    parser.add_argument(
        "--blob-dir",
        type=Path,
        default=None,
        help="files' bytes (default: DATA_DIR/files); nodes may share one",
    )
    parser.add_argument(
        "--redis",
        default=None,
        help="Redis URL shared by the nodes of a cluster, e.g. redis://host:6379/0",
    )
    parser.add_argument(
        "--node-id",
        default=None,
        help="this node's name in the cluster (default: random at each start)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=None,
        help="on SIGTERM, wait up to this many seconds for meetings to end, with "
        "no new rooms and other users sent on to other nodes (default: 60 with "
        "--redis, else 0: stop at once); a second signal stops at once",
    )
    parser.add_argument("--cert", type=Path, default=Path("certs/cert.pem"))
    parser.add_argument("--key", type=Path, default=Path("certs/key.pem"))
    parser.add_argument(
        "--hostname",
        action="append",
        default=[],
        help="extra name or address for the generated certificate (repeatable)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=5.0,
        help="seconds of silence after which a client is declared gone; at 30 or "
        "more clients PING every third of it instead of every 1.5 s (for a node "
        "holding many connections: docs/operations.md)",
    )
    parser.add_argument(
        "--max-unvalidated-handshakes",
        type=int,
        default=128,
        metavar="N",
        help="while N handshakes begun without a QUIC Retry are unfinished, "
        "new connections are asked to prove their address with a Retry first "
        "(one round trip more for them; a flood of first flights then costs "
        "the node little; 0: always; -1: never)",
    )
    parser.add_argument(
        "--max-receive-delay",
        type=float,
        default=0.25,
        help="seconds a datagram may wait in the node's socket before it is "
        "dropped unread; while a queue stands there, a shrinking share of the "
        "connections is served, so that a node that fell behind catches up "
        "(0: never drop)",
    )
    parser.add_argument(
        "--max-room-members",
        type=int,
        default=16,
        help="members one meeting room may hold",
    )
    parser.add_argument(
        "--retention-days",
        type=float,
        default=30.0,
        help="keep delivered chat messages this many days on the server",
    )
    parser.add_argument(
        "--chat-rate",
        type=float,
        default=50.0,
        help="chat messages per second one user may sustain (bursts of twice that)",
    )
    parser.add_argument(
        "--request-rate",
        type=float,
        default=100.0,
        help="requests per second one connection may sustain (bursts of twice that)",
    )
    parser.add_argument(
        "--max-file-size",
        type=_size,
        default="8GiB",
        help="largest file one transfer may carry (e.g. 8GiB, 500MB)",
    )
    parser.add_argument(
        "--quota",
        type=_size,
        default="100GiB",
        help="bytes of files one user may keep on the server",
    )
    parser.add_argument(
        "--max-transfers",
        type=int,
        default=8,
        help="file streams one user may have open at once",
    )
    parser.add_argument(
        "--stats-file",
        type=Path,
        default=None,
        help="write counters (JSON) here at exit and on SIGUSR1",
    )
    parser.add_argument(
        "--no-heap-freeze",
        action="store_true",
        help="leave Python's garbage collector as it is (by default what "
        "survives a full pass is frozen, so that a node holding many "
        "connections does not stall for seconds in each pass)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("--port must be 0..65535")
    if args.max_room_members < 2:
        parser.error("--max-room-members must be at least 2")
    if args.retention_days <= 0:
        parser.error("--retention-days must be positive")
    if args.max_transfers < 1:
        parser.error("--max-transfers must be at least 1")
    if args.max_receive_delay < 0:
        parser.error("--max-receive-delay must not be negative")
    if args.max_unvalidated_handshakes < -1:
        parser.error("--max-unvalidated-handshakes must be -1 (never), 0 or more")
    if args.drain_timeout is not None and args.drain_timeout < 0:
        parser.error("--drain-timeout must not be negative")
    if args.chat_rate <= 0 or args.request_rate <= 0:
        parser.error("--chat-rate and --request-rate must be positive")
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.log_level != "debug":
        # aioquic logs every connection's handshake at INFO: noise for an
        # operator, kept for --log-level debug.
        logging.getLogger("quic").setLevel(logging.WARNING)
    return ServerConfig(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        db_url=args.db,
        blob_dir=args.blob_dir,
        redis_url=args.redis,
        node_id=args.node_id,
        drain_timeout=(
            args.drain_timeout
            if args.drain_timeout is not None
            else (60.0 if args.redis else 0.0)
        ),
        cert=args.cert,
        key=args.key,
        hostnames=args.hostname,
        idle_timeout=args.idle_timeout,
        max_receive_delay=args.max_receive_delay or None,
        max_unvalidated_handshakes=(
            None
            if args.max_unvalidated_handshakes < 0
            else args.max_unvalidated_handshakes
        ),
        max_room_members=args.max_room_members,
        stats_file=args.stats_file,
        freeze_heap=not args.no_heap_freeze,
        retention_days=args.retention_days,
        chat_rate=args.chat_rate,
        chat_burst=args.chat_rate * 2,
        request_rate=args.request_rate,
        request_burst=args.request_rate * 2,
        max_file_size=args.max_file_size,
        quota_bytes=args.quota,
        max_transfers=args.max_transfers,
    )


async def run(config: ServerConfig) -> None:
    """Serve until SIGINT or SIGTERM, drain if so configured, then shut down
    cleanly."""
    try:
        app = ServerApp(config)
    except (StorageUnavailable, ClusterUnavailable) as exc:
        raise SystemExit(f"quicmeet-server: {exc}") from None
    try:
        host, port = await app.start()
    except (StorageUnavailable, ClusterUnavailable) as exc:
        await asyncio.get_running_loop().run_in_executor(None, app.storage.close)
        raise SystemExit(f"quicmeet-server: {exc}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if config.freeze_heap:
        app.heap = HeapFreezer(loop, lambda: len(app.connections))
        app.heap.install()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if config.stats_file is not None:
        loop.add_signal_handler(signal.SIGUSR1, _write_stats, app, config.stats_file)
    # Ready only once its signals are handled: a SIGUSR1 sent on this line
    # would otherwise end the process (the signal's default action).
    print(f"listening on {host}:{port}", flush=True)
    await stop.wait()
    if config.drain_timeout > 0:
        stop.clear()
        draining = loop.create_task(drain(app, config.drain_timeout))
        again = loop.create_task(stop.wait())
        await asyncio.wait({draining, again}, return_when=asyncio.FIRST_COMPLETED)
        draining.cancel()
        again.cancel()
    if config.stats_file is not None:
        _write_stats(app, config.stats_file)
    await app.shutdown()
    if app.heap is not None:
        app.heap.uninstall()


def _write_stats(app: ServerApp, path: Path) -> None:
    """Write the counters; the stall figure then restarts, so each report
    covers the time since the previous one."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(app.snapshot(), sort_keys=True))
    tmp.replace(path)
    app.monitor.reset()
    app.collector.reset()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("backup", "restore"):
        return backup_cli.main(args)
    config = parse_args(args)
    try:
        import uvloop
    except ImportError:
        asyncio.run(run(config))
    else:
        uvloop.run(run(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
