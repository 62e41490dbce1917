"""Helpers shared by the benchmarks: child processes, RSS, percentiles, CPU
figures per phase, the server's stats."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def can_plot() -> bool:
    """Whether matplotlib is installed; when not, says so on stderr, so that a
    benchmark reports its figures without the picture."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(
            "no plot: matplotlib is not installed (pip install -e '.[bench]')",
            file=sys.stderr,
        )
        return False
    return True


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Child:
    proc: subprocess.Popen[str]
    host: str
    port: int
    workdir: Path

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def rss_kib(self) -> int:
        return rss_kib(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def process_cpu_seconds(pid: int | None = None, *, children: bool = False) -> float:
    """User plus system CPU time of ``pid`` (this process by default; Linux);
    with ``children``, that of its child processes that ended and were
    waited for instead."""
    with open(f"/proc/{pid or os.getpid()}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    first = 13 if children else 11
    ticks = int(fields[first]) + int(fields[first + 1])
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_cpu_ticks() -> tuple[int, int]:
    """This machine's CPU time since boot, all cores, in clock ticks: (busy,
    total), busy being everything but idle and I/O wait (Linux's
    ``/proc/stat``)."""
    with open("/proc/stat") as fh:
        fields = [int(v) for v in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    # guest time is already counted in user and nice
    total = sum(fields[:8])
    return total - idle, total


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of the machine's CPU (all cores) busy between two
    :func:`machine_cpu_ticks` readings; 0 when no tick passed."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total > 0 else 0.0


def start_child(
    args: list[str], workdir: Path | None = None, root: Path = ROOT
) -> Child:
    """Start ``python ARGS`` in ``root`` (a checkout of the project) and wait
    for its ``listening on HOST:PORT`` line."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="quicmeet-bench-"))
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=open(os.environ.get("BENCH_CHILD_LOG", os.devnull), "w"),
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"child did not start: {line!r}")
    host, _, port = line.split()[-1].rpartition(":")
    return Child(proc, host, int(port), workdir)


def start_netsim(
    upstream: str, link: list[str], seed: int, stats_every_s: float = 0
) -> Child:
    """Start ``quicmeet-netsim`` in front of ``upstream`` with the link
    options ``link`` (``--delay``, ``--loss``...); its address is the child's.
    With ``stats_every_s``, it reports its links' counters that often on its
    stdout: read them with :class:`LinkMeter` (nothing else may read it)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "netsim", "--listen", "127.0.0.1:0",
         "--upstream", upstream, "--seed", str(seed), "--stats-format", "json",
         "--stats-every", f"{stats_every_s}s", *link],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    start = json.loads(proc.stdout.readline())
    host, _, port = start["listen"].rpartition(":")
    return Child(proc, host, int(port), Path(tempfile.gettempdir()))


class LinkMeter:
    """What a relay started with ``stats_every_s`` carried: a thread reads its
    JSON stats lines until it exits. ``samples`` are (seconds since the
    relay's start, bytes its up link delivered, bytes its down link
    delivered): what the path carried, whatever system sent it."""

    def __init__(self, relay: Child) -> None:
        self.samples: list[tuple[float, int, int]] = []
        self._thread = threading.Thread(
            target=self._read, args=(relay.proc,), name="link-meter", daemon=True
        )
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                record = json.loads(line)
                sample = (
                    float(record["elapsed_s"]),
                    int(record["up"]["bytes_out"]),
                    int(record["down"]["bytes_out"]),
                )
            except (ValueError, KeyError, TypeError):
                continue
            self.samples.append(sample)

    def join(self, timeout: float = 5.0) -> None:
        """Wait for the relay's last line (call after stopping it)."""
        self._thread.join(timeout)

    def up_bps(self, begin_s: float, end_s: float) -> float | None:
        """The up link's delivered rate between two of its times (bits per
        second, between the samples nearest inside), None without two."""
        inside = [(t, up) for t, up, _ in self.samples if begin_s <= t <= end_s]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return None
        (t0, b0), (t1, b1) = inside[0], inside[-1]
        return (b1 - b0) * 8 / (t1 - t0)


def start_meet(address: str, home: Path, *args: str) -> subprocess.Popen[str]:
    """Start ``quicmeet-cli --json meet ARGS`` as the user whose home is
    ``home``; its JSON lines come on stdout."""
    return subprocess.Popen(
        [sys.executable, "-m", "client", "--server", address, "--home", str(home),
         "--json", "meet", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


def start_quicmeet_server(
    extra: list[str] | None = None,
    *,
    root: Path = ROOT,
    workdir: Path | None = None,
) -> Child:
    """A server node of the checkout at ``root`` on a free port, its data, its
    certificate and its stats file in ``workdir`` (a new temporary directory
    by default), ``extra`` added to its command line."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="quicmeet-bench-"))
    profile = os.environ.get("BENCH_PROFILE_SERVER")
    prefix = ["-m", "cProfile", "-o", profile] if profile else []
    trace = os.environ.get("BENCH_TRACE_SERVER")
    if trace:
        # bench/_send_trace.py: why the server's QUIC senders stop sending.
        prefix = ["bench/_send_trace.py", trace]
    return start_child(
        [
            *prefix,
            "-m",
            "server",
            "--port",
            "0",
            "--data-dir",
            str(workdir / "data"),
            "--cert",
            str(workdir / "cert.pem"),
            "--key",
            str(workdir / "key.pem"),
            "--log-level",
            "error",
            "--stats-file",
            str(workdir / "stats.json"),
            *(extra or []),
        ],
        workdir,
        root,
    )


def thread_cpu_wait_seconds(pid: int, tid: int | None = None) -> float:
    """Seconds thread ``tid`` of ``pid`` (its main thread by default) has spent
    runnable but waiting for a CPU (Linux schedstat): time the machine, not
    the program, took."""
    with open(f"/proc/{pid}/task/{tid or pid}/schedstat") as fh:
        return int(fh.read().split()[1]) / 1e9


def freeze_heap() -> None:
    """Collect, then freeze what this process holds (its clients, set up
    before a measured phase), as the nodes (``server/heap.py``) and
    ``bench/load.py``'s generators do. One benchmark process stands in for
    the machines of many clients: left alone, each of its full collections
    walks all their connections at once and stops every one of them for
    tens of milliseconds, which the messages in flight then carry as
    latency. The collector skips frozen objects. Call it again before the
    next phase: it unfreezes first, so what became garbage is collected."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


PERF_GROUPS = (
    ("interpreter", ("libpython",)),
    ("crypto", ("_rust.abi3", "libcrypto", "libssl")),
    ("kernel", ("[kernel",)),
    ("libc", ("libc.so", "libm.so", "ld-linux")),
    ("event_loop", ("loop.cpython", "_asyncio.cpython")),
)
"""How :func:`perf_shares` groups the shared objects a process's samples fell
in: CPython itself (bytecode, its objects, allocator and collector), the AEAD
and header protection (``cryptography``'s Rust module and OpenSSL), the
kernel (system calls, the loopback's delivery), the C library (``malloc``,
``memcpy``) and the event loop's own C code (uvloop, asyncio's)."""


def perf_shares(report: str) -> dict[str, float]:
    """Per cent of the samples in each group of :data:`PERF_GROUPS` (and
    ``other``), from the text of ``perf report --sort dso --stdio``."""
    shares = dict.fromkeys([name for name, _ in PERF_GROUPS] + ["other"], 0.0)
    for line in report.splitlines():
        fields = line.split(None, 1)
        if len(fields) != 2 or not fields[0].endswith("%") or line.startswith("#"):
            continue
        try:
            share = float(fields[0][:-1])
        except ValueError:
            continue
        dso = fields[1].strip()
        group = next(
            (name for name, marks in PERF_GROUPS if any(m in dso for m in marks)),
            "other",
        )
        shares[group] += share
    return {name: round(share, 1) for name, share in shares.items()}


class PerfSampler:
    """``perf record`` on one process for ``seconds``, started at once;
    :meth:`result` waits for it and gives :func:`perf_shares`. Where perf is
    missing or may not watch the process, it raises ``RuntimeError`` saying
    so (``apt-get install linux-perf``; as root, or with
    ``kernel.perf_event_paranoid`` at 1 or less)."""

    def __init__(self, pid: int, seconds: float, frequency: int = 499) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="quicmeet-perf-")
        self._data = Path(self._dir.name) / "perf.data"
        try:
            self._proc = subprocess.Popen(
                ["perf", "record", "-q", "-F", str(frequency), "-p", str(pid),
                 "-o", str(self._data), "--", "sleep", f"{seconds:.1f}"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
        except FileNotFoundError:
            self._dir.cleanup()
            raise RuntimeError(
                "perf is not installed (apt-get install linux-perf)"
            ) from None

    def result(self) -> dict[str, float]:
        try:
            _, err = self._proc.communicate()
            if self._proc.returncode or not self._data.exists():
                raise RuntimeError(f"perf record failed: {err.strip()}")
            report = subprocess.run(
                ["perf", "report", "-i", str(self._data), "--no-children",
                 "--sort", "dso", "--stdio", "-g", "none"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout  # fmt: skip
            return perf_shares(report)
        finally:
            self._dir.cleanup()


class LoopLag:
    """How late this process's event loop wakes: a task sleeps ``interval``
    seconds over and over and records each oversleep (seconds)."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.lags.clear()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            self.lags.append(loop.time() - before - self.interval)

    def stop(self) -> list[float]:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        return self.lags


class Phase:
    """CPU figures of one phase: how busy the server and this process were
    (cores) and how long each one's loop thread waited for a CPU (share of the
    phase's wall time)."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.start = time.perf_counter()
        self.server_cpu = process_cpu_seconds(server_pid)
        self.own_cpu = process_cpu_seconds()
        self.server_wait = thread_cpu_wait_seconds(server_pid)
        self.own_wait = thread_cpu_wait_seconds(os.getpid())

    def finish(self) -> dict:
        elapsed = time.perf_counter() - self.start
        server = (process_cpu_seconds(self.server_pid) - self.server_cpu) / elapsed
        own = (process_cpu_seconds() - self.own_cpu) / elapsed
        server_wait = thread_cpu_wait_seconds(self.server_pid) - self.server_wait
        own_wait = thread_cpu_wait_seconds(os.getpid()) - self.own_wait
        return {
            "seconds": round(elapsed, 2),
            "server_cores_busy": round(server, 2),
            "load_generator_cores_busy": round(own, 2),
            "server_loop_waited_for_cpu": round(server_wait / elapsed, 3),
            "load_generator_loop_waited_for_cpu": round(own_wait / elapsed, 3),
            "first": saturated_first(server, own),
        }


async def server_stats(server: Child) -> dict:
    """The server's counters; its worst loop stall then restarts, so each call
    covers the time since the previous one."""
    path = server.workdir / "stats.json"

    def version() -> tuple[int, int] | None:
        # The server replaces the file, so a new write is a new inode even
        # within one tick of the file system's clock.
        return (path.stat().st_ino, path.stat().st_mtime_ns) if path.exists() else None

    before = version()
    server.proc.send_signal(signal.SIGUSR1)
    deadline = time.perf_counter() + 5
    while time.perf_counter() < deadline:
        if version() not in (None, before):
            return json.loads(path.read_text())
        await asyncio.sleep(0.01)
    raise RuntimeError("the server wrote no stats")


def stat_grew(after: dict, before: dict, name: str) -> int | None:
    """How much the server's counter ``name`` grew between two
    :func:`server_stats` (None: a build without it)."""
    return after[name] - before.get(name, 0) if name in after else None


def saturated_first(server_load: float, own_load: float) -> str:
    """Which side ran out of CPU (one core's worth, less 10 %), if either."""
    busy = {"server": server_load, "load generator": own_load}
    side = max(busy, key=busy.__getitem__)
    return side if busy[side] >= 0.9 else "neither"


def _udp_sockets(ports: set[int]) -> list[list[str]]:
    """The lines of /proc/net/udp of the sockets bound to ``ports``."""
    found = []
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) in ports:
            found.append(fields)
    return found


def udp_socket_drops(ports: set[int]) -> int:
    """Datagrams the loopback UDP sockets bound to ``ports`` dropped for a
    full receive buffer since they opened (the kernel counts per socket)."""
    return sum(int(fields[-1]) for fields in _udp_sockets(ports))


def udp_socket_queued(ports: set[int]) -> int:
    """Bytes waiting to be read in the UDP sockets bound to ``ports`` (the
    kernel's accounting: each datagram's buffer, not only its payload)."""
    return sum(int(fields[4].split(":")[1], 16) for fields in _udp_sockets(ports))
