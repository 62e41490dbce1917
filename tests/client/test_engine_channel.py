"""The channel between the window and the engine, tested against a real
engine process (``python -m client.engine``) with this test as its window:
framing, typed commands and replies, and refusals of bad input that change
nothing. And the engine package never imports Tk."""

from __future__ import annotations

import ast
import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from client.engine import messages as m
from client.engine.channel import (
    MAX_FRAME,
    FrameReader,
    Oversized,
    decode_up,
    encode_event,
    encode_request,
    frame,
)
from client.engine.errors import (
    MALFORMED,
    TOO_LARGE,
    UNKNOWN_COMMAND,
    ChannelError,
    UntrustedCertificate,
    from_failure,
    to_failure_fields,
)
from client.engine.model import Notice, Roster, ServerIdentity
from client.engine.service import Outbox
from client.errors import CertificateMismatch, ClientError, ServerError
from tests.conftest import ROOT

ENGINE = ROOT / "client" / "engine"


class Window:
    """This test as the engine's window: raw frames over a socket pair."""

    def __init__(self, home: Path) -> None:
        ours, theirs = socket.socketpair()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "client.engine", "--fd", str(theirs.fileno()),
             "--home", str(home)],
            cwd=ROOT,
            pass_fds=[theirs.fileno()],
        )  # fmt: skip
        theirs.close()
        self.sock = ours
        self.sock.settimeout(30)
        self.reader = FrameReader()
        self.waiting: list[bytes | Oversized] = []

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def receive(self) -> m.Reply | m.Failure | m.EventMessage:
        while not self.waiting:
            data = self.sock.recv(65536)
            assert data, "the engine closed the channel"
            self.waiting += self.reader.feed(data)
        payload = self.waiting.pop(0)
        assert isinstance(payload, bytes)
        return decode_up(payload)

    def reply(self) -> m.Reply | m.Failure:
        """The next reply or failure (events in between are skipped)."""
        while True:
            message = self.receive()
            if not isinstance(message, m.EventMessage):
                return message

    def close(self) -> int:
        self.sock.close()
        return self.proc.wait(10)


@pytest.fixture
def window(tmp_path: Path) -> Iterator[Window]:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.json").write_text(json.dumps({"theme": "darkly"}))
    w = Window(home)
    yield w
    if w.proc.poll() is None:
        w.close()


def test_bad_frames_get_clear_errors_and_change_nothing(
    window: Window, tmp_path: Path
) -> None:
    config = (tmp_path / "home" / "config.json").read_text()
    # Not msgpack at all.
    window.send(frame(b"\xc1 not msgpack"))
    failure = window.reply()
    assert isinstance(failure, m.Failure)
    assert (failure.rid, failure.code) == (None, MALFORMED)
    assert failure.message.startswith("malformed message: ")
    # A command the engine does not have.
    window.send(
        frame(msgspec.msgpack.encode(
            {"type": "request", "rid": 7, "command": {"name": "format_disk"}}
        ))
    )  # fmt: skip
    failure = window.reply()
    assert isinstance(failure, m.Failure)
    assert (failure.rid, failure.code) == (7, UNKNOWN_COMMAND)
    assert failure.message == "unknown command 'format_disk'"
    # A known command with arguments of the wrong type: refused, not run.
    window.send(
        frame(msgspec.msgpack.encode(
            {"type": "request", "rid": 8,
             "command": {"name": "save_settings", "values": "theme=flatly"}}
        ))
    )  # fmt: skip
    failure = window.reply()
    assert isinstance(failure, m.Failure)
    assert (failure.rid, failure.code) == (8, MALFORMED)
    assert "$.command.values" in failure.message
    # A frame over the limit is skipped unread, and the stream stays in step.
    window.send(frame(b"\x00" * (MAX_FRAME + 1)))
    failure = window.reply()
    assert isinstance(failure, m.Failure) and failure.code == TOO_LARGE
    assert failure.message == (
        f"a frame of {MAX_FRAME + 1} bytes is over the {MAX_FRAME} limit"
    )
    error = from_failure(failure.kind, failure.message, failure.details)
    assert isinstance(error, ChannelError) and error.code == TOO_LARGE
    # Nothing changed, and the engine still answers.
    window.send(encode_request(9, m.Settings()))
    reply = window.reply()
    assert isinstance(reply, m.Reply) and reply.rid == 9
    assert msgspec.msgpack.decode(reply.value)["theme"] == "darkly"
    assert (tmp_path / "home" / "config.json").read_text() == config
    assert window.close() == 0


def test_commands_are_answered_in_kind_and_failures_keep_their_class(
    window: Window,
) -> None:
    window.send(encode_request(1, m.Settings()))
    reply = window.reply()
    assert isinstance(reply, m.Reply) and reply.rid == 1
    settings = msgspec.msgpack.decode(reply.value, type=m.Settings.result)
    assert settings["theme"] == "darkly" and "downloads" in settings
    # A command that needs an account, without one: the error's class and
    # words cross the channel.
    window.send(encode_request(2, m.SendMessage("bob", "hi", "c1")))
    failure = window.reply()
    assert isinstance(failure, m.Failure) and failure.rid == 2
    assert (failure.kind, failure.message) == ("NotSignedIn", "not signed in")
    # A server address that does not parse: the core's own ClientError.
    window.send(encode_request(3, m.SignIn("no port here", "ann", "pw")))
    failure = window.reply()
    assert isinstance(failure, m.Failure) and failure.rid == 3
    assert isinstance(
        from_failure(failure.kind, failure.message, failure.details), ClientError
    )
    window.send(encode_request(4, m.SaveSettings({"theme": "flatly"})))
    assert isinstance(window.reply(), m.Reply)
    assert window.close() == 0


def test_the_engine_never_imports_tk() -> None:
    forbidden = ("tkinter", "_tkinter", "ttkbootstrap", "PIL.ImageTk", "client.ui")
    for path in ENGINE.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level:
                    parts = path.relative_to(ROOT).with_suffix("").parts
                    base = parts[: len(parts) - node.level]
                    module = ".".join([*base, module] if module else base)
                names = [module, *(f"{module}.{a.name}" for a in node.names)]
            for name in names:
                assert not name.startswith(forbidden), f"{path}: imports {name}"
    # Nor does anything it imports, all the way down.
    loaded = subprocess.run(
        [sys.executable, "-c",
         "import sys, client.engine.main, client.engine.service; "
         "print(sorted(m for m in sys.modules if 'tk' in m.lower()))"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert loaded == "[]"


@given(st.lists(st.binary(max_size=300), max_size=8), st.integers(1, 64))
def test_frames_come_out_whole_however_the_bytes_are_cut(
    payloads: list[bytes], cut: int
) -> None:
    stream = b"".join(frame(p) for p in payloads)
    reader = FrameReader()
    out: list[bytes | Oversized] = []
    for i in range(0, len(stream), cut):
        out += reader.feed(stream[i : i + cut])
    assert out == payloads


def test_an_oversized_frame_is_skipped_and_the_next_one_read() -> None:
    reader = FrameReader(limit=10)
    stream = frame(b"x" * 25) + frame(b"ok")
    assert reader.feed(stream[:7]) == [Oversized(25)]
    assert reader.feed(stream[7:]) == [b"ok"]
    assert MAX_FRAME >= 1024**2


@pytest.mark.parametrize(
    "error",
    [
        ServerError(4003, "no such user", 1500),
        CertificateMismatch("h:1", "aa", "bb"),
        UntrustedCertificate(ServerIdentity("h:1", "cc")),
        ClientError("the file changed while it was sent"),
    ],
)
def test_errors_cross_the_channel_as_their_own_class(error: Exception) -> None:
    rebuilt = from_failure(*to_failure_fields(error))
    assert type(rebuilt) is type(error) and str(rebuilt) == str(error)


def test_an_error_without_a_class_here_says_what_it_was() -> None:
    rebuilt = from_failure(*to_failure_fields(KeyError("x")))
    assert str(rebuilt) == "KeyError: 'x'"


async def test_a_slow_window_never_blocks_the_engine_and_drops_only_old_snapshots():
    ours, theirs = socket.socketpair()
    # Small socket buffers: a window that reads nothing fills them at once.
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader, writer = await asyncio.open_unix_connection(sock=theirs)
    outbox = Outbox(writer, high_water=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for i in range(20):
        outbox.event(Notice(f"n{i}", "x" * 2000))
        outbox.event(Roster())
    outbox.send(frame(b"the reply"))
    assert loop.time() - started < 1.0  # never waited for the window
    assert outbox.overflowed > 0
    ours.setblocking(False)
    frames_read: list[bytes | Oversized] = []
    frame_reader = FrameReader()
    deadline = loop.time() + 10
    while b"the reply" not in frames_read and loop.time() < deadline:
        try:
            frames_read += frame_reader.feed(ours.recv(65536))
        except BlockingIOError:
            await asyncio.sleep(0.01)
    events = [decode_up(f) for f in frames_read if f != b"the reply"]
    titles = [
        msgspec.msgpack.decode(e.body, type=Notice).title
        for e in events
        if isinstance(e, m.EventMessage) and e.kind == "Notice"
    ]
    assert titles == [f"n{i}" for i in range(20)]
    # Waiting snapshots were replaced by newer ones; the reply came last.
    rosters = [
        e for e in events if isinstance(e, m.EventMessage) and e.kind == "Roster"
    ]
    assert 1 <= len(rosters) < 20
    assert frames_read[-1] == b"the reply"
    assert encode_event(Roster()) == frame(
        msgspec.msgpack.encode(m.EventMessage("Roster", msgspec.Raw(
            msgspec.msgpack.encode(Roster()))))
    )  # fmt: skip
    writer.close()
    ours.close()
