"""A seeded fuzzer of the server's inputs, and the checks between its batches.

Every request type and every stream kind (control, upload, download, and the
unidirectional streams the protocol does not use) gets generated input: fields
of the right type with plausible values (real user names, file and room ids),
fields of the wrong type, missing and extra fields, request ids out of range,
msgpack that is nested, truncated or not a map, frames over the limit, and
streams ended, reset, stopped or left open. The same seed gives the same input.

The inputs themselves come from :mod:`tests.server.fuzz_inputs`. The suite
runs a short campaign (tests/server/test_fuzz.py); ``bench/fuzz.py``
runs a longer one and prints its figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from client import Session
from client.social import Friends
from client.store import LocalStore
from client.transfers import Transfers
from codec.messages import (
    STREAM_REQUESTS,
    ChatMessage,
    CreateRoom,
    GetProfile,
    LoggedIn,
    Login,
    MessageAccepted,
    RoomJoined,
    SendMessage,
    SyncDone,
    SyncMessages,
)
from server import ServerApp
from server.connection import ClientConnection

from .fuzz_inputs import World, control_input, frame, plausible, stream_request
from .rawclient import raw_connect

PASSWORD = "correct horse battery"
LAST_RID = 2**53
"""The request id of the request that ends each connection's input."""


@dataclass
class BatchStats:
    """What one batch sent and what came of it."""

    inputs: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    closed_by_server: int = 0
    logged_in: int = 0
    replies: Counter[Any] = field(default_factory=Counter)
    """Control-stream replies and events by error code or type."""


class Fuzzer:
    """Sends batches of generated input to a server as one hostile client."""

    def __init__(self, app: ServerApp, world: World, seed: int) -> None:
        self.app = app
        self.world = world
        self.rng = random.Random(seed)

    async def batch(self, inputs: int, login: bool) -> BatchStats:
        """Send ``inputs`` inputs over as many connections as the server
        leaves open, logged in as ``fuzzer`` when ``login``."""
        stats = BatchStats()
        host, port = self.app.address
        sent = 0
        while sent < inputs:
            stats.connections += 1
            async with raw_connect(host, port) as raw:
                if login and await self._login(raw):
                    stats.logged_in += 1
                elif not login:
                    # Stream 0 is the control stream: open it before any other.
                    raw.send_raw(control_input(self.rng, self.world))
                    stats.inputs["control"] += 1
                    sent += 1
                while sent < inputs and raw.terminated is None:
                    kind = self._one(raw)
                    stats.inputs[kind] += 1
                    sent += 1
                    if sent % 10 == 0:
                        await asyncio.sleep(0.01)
                await self._drain(raw)
                stats.replies.update(
                    getattr(m, "code", None) or type(m).__name__ for m in raw.received
                )
                if raw.terminated is not None:
                    stats.closed_by_server += 1
        return stats

    async def _drain(self, raw: Any) -> None:
        """Wait until the server has answered everything sent on the control
        stream (its reply to one last request), or closed the connection."""
        if raw.terminated is not None:
            return
        raw.send(GetProfile(rid=LAST_RID))
        for _ in range(250):
            if raw.terminated is not None or any(
                getattr(m, "rid", None) == LAST_RID for m in raw.received
            ):
                return
            await asyncio.sleep(0.02)

    async def _login(self, raw: Any) -> bool:
        raw.send(Login(rid=1, username="fuzzer", password=PASSWORD))
        for _ in range(50):
            if raw.received or raw.terminated is not None:
                break
            await asyncio.sleep(0.02)
        return any(isinstance(m, LoggedIn) for m in raw.received)

    def _one(self, raw: Any) -> str:
        rng = self.rng
        roll = rng.random()
        quic = raw._quic
        try:
            if roll < 0.7:
                raw.send_raw(control_input(rng, self.world))
                return "control"
            if roll < 0.97:
                kind = rng.choice(["upload", "avatar", "download"])
                cls = STREAM_REQUESTS[["avatar", "upload", "download"].index(kind)]
                stream_id = quic.get_next_available_stream_id()
                data = stream_request(rng, cls, self.world)
                if kind == "download":
                    for _ in range(rng.randint(0, 3)):
                        written = plausible(
                            rng, msgspec.inspect.IntType(), "written", self.world
                        )
                        body = {"type": "TransferProgress", "written": written}
                        data += frame(msgspec.msgpack.encode(body))
                else:
                    data += rng.randbytes(rng.choice([0, 10, 1000, 20_000]))
                self._end_stream(raw, stream_id, data)
                return kind
            stream_id = quic.get_next_available_stream_id(is_unidirectional=True)
            raw.send_raw(rng.randbytes(rng.randint(1, 2000)), stream_id)
            return "unidirectional"
        except Exception as exc:  # aioquic refuses more streams than allowed
            return f"refused locally: {exc}"

    def _end_stream(self, raw: Any, stream_id: int, data: bytes) -> None:
        rng = self.rng
        ending = rng.choice(["fin", "fin", "open", "reset", "stop"])
        raw.send_raw(data, stream_id, end=ending == "fin")
        if ending == "reset":
            raw._quic.reset_stream(stream_id, 0)
        elif ending == "stop":
            raw._quic.stop_stream(stream_id, 0)
        raw.transmit()


def live_connections() -> int:
    """Server connection objects still in memory (after a collection)."""
    gc.collect()
    return sum(isinstance(o, ClientConnection) for o in gc.get_objects())


def resident_mb() -> float:
    """This process's resident memory, in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def well_behaved_chat(app: ServerApp, buddy: Session, text: str) -> None:
    """A fresh client logs in as ``checker`` and chats with ``buddy``."""
    host, port = app.address
    checker = Session(f"{host}:{port}")
    try:
        await checker.connect(timeout=30)
        await checker.login("checker", PASSWORD)
        await checker.call(
            SendMessage, MessageAccepted, to="buddy", client_id=text, text=text
        )
    finally:
        await checker.close()
    while True:
        event = await buddy.next_event(30)
        if isinstance(event, ChatMessage) and event.text == text:
            return


async def populate(app: ServerApp, home: Path) -> tuple[World, Session]:
    """Users ``fuzzer``, ``buddy`` (a friend of both others) and ``checker``, a
    file from buddy to fuzzer and a room of buddy's; return buddy's session,
    synced so that chat messages reach it live."""
    host, port = app.address
    sessions = {}
    for name in ("fuzzer", "buddy", "checker"):
        session = Session(f"{host}:{port}")
        await session.connect()
        await session.register(name, PASSWORD)
        await session.login(name, PASSWORD)
        sessions[name] = session
    for name in ("fuzzer", "checker"):
        await Friends(sessions[name]).request("buddy")
        await Friends(sessions["buddy"]).accept(name)
    source = home / "shared.bin"
    source.write_bytes(random.Random(1).randbytes(200_000))
    store = LocalStore(home / "buddy.db")
    try:
        sent = await Transfers(sessions["buddy"], store, home / "downloads").send(
            "fuzzer", source
        )
    finally:
        for session in sessions.values():
            await session.close()
        store.close()
    buddy = Session(f"{host}:{port}")
    await buddy.connect()
    await buddy.login("buddy", PASSWORD)
    room = await buddy.call(CreateRoom, RoomJoined)
    await buddy.call(SyncMessages, SyncDone, seen={})
    world = World(
        users=["fuzzer", "buddy", "checker"],
        file_ids=[sent.file_id],
        room_ids=[room.room.room_id],
    )
    return world, buddy


async def campaign(
    app: ServerApp,
    world: World,
    buddy: Session,
    *,
    seed: int,
    batches: int,
    inputs: int,
) -> dict[str, Any]:
    """Run ``batches`` batches of ``inputs`` inputs, half before and half after
    login, checking after each that the server is alive and well (a client
    logs in and chats), logged no error, and holds no leftover connection,
    transfer or memory. Raises AssertionError at the first failed check."""
    fuzzer = Fuzzer(app, world, seed)
    errors = ErrorLog()
    sent: Counter[str] = Counter()
    rss: list[float] = []
    closed = connections = logins = 0
    replies: Counter[Any] = Counter()
    baseline = len(app.connections)
    with errors.installed():
        for number in range(batches):
            stats = await fuzzer.batch(inputs, login=number % 2 == 1)
            sent.update(stats.inputs)
            closed += stats.closed_by_server
            replies.update(stats.replies)
            connections += stats.connections
            logins += stats.logged_in
            # Throttles the fuzzer set off (it shares the checker's address)
            # have run out an hour later.
            app.context.clock.advance(3600.0)
            await well_behaved_chat(app, buddy, f"check {seed}-{number}")
            assert not errors.records, "\n".join(errors.records)
            # A closed connection drains for a few round trips in aioquic
            # before it lets go of the protocol object.
            for _ in range(300):
                if (
                    len(app.connections) <= baseline
                    and not app.files.active
                    and live_connections() <= baseline + 1
                ):
                    break
                await asyncio.sleep(0.1)
            assert len(app.connections) <= baseline, "connections left open"
            assert not app.files.active, "transfers left running"
            assert not app.files.streams_per_user, "transfer slots not given back"
            assert live_connections() <= baseline + 1, "connections not freed"
            rss.append(resident_mb())
    assert rss[-1] - min(rss) < 64, f"memory stayed up: {rss}"
    return {
        "seed": seed,
        "batches": batches,
        "inputs": sum(sent.values()),
        "inputs_by_kind": dict(sorted(sent.items())),
        "connections": connections,
        "closed_by_server": closed,
        "logged_in_batches": logins,
        "replies": {str(k): v for k, v in sorted(replies.items(), key=str)},
        "resident_mb": [round(v, 1) for v in rss],
    }


SERVER_CODE = str(Path(__file__).resolve().parents[2] / "server")


class ErrorLog(logging.Handler):
    """Collects every ERROR (and worse) record that comes from the server's
    code, tracebacks included (asyncio reports a failed server task under its
    own name; what other code in the process logs is not the server's)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        if record.pathname.startswith(SERVER_CODE) or SERVER_CODE in text:
            self.records.append(text)

    @contextlib.contextmanager
    def installed(self) -> Any:
        root = logging.getLogger()
        root.addHandler(self)
        try:
            yield self
        finally:
            root.removeHandler(self)
