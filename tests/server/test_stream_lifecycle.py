"""Every transfer stream ends on both sides and gives its slot back, whatever
order its events come in: streams ended early, stopped, cancelled, refused,
out of order, and streams of a kind the protocol does not use."""

import logging
import os

import msgspec
import pytest

from client.transfers import Transfers
from codec import CloseCode, ErrorCode, encode_message
from codec.messages import (
    CancelFile,
    DownloadFile,
    Error,
    FileCancelled,
    FileData,
    FileOffered,
    GetProfile,
    LoggedIn,
    Login,
    Ok,
    ProfileInfo,
)
from server import ServerApp
from tests.conftest import PASSWORD, befriend, eventually, next_of, server_config

from .rawclient import raw_connect

NESTED = b"\x91" * 1000 + b"\xc0"
"""A msgpack array nested 1,000 levels deep (about 1 KB)."""


def errors_logged(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def login(raw, name: str) -> None:
    reply = await raw.request(Login(rid=1, username=name, password=PASSWORD))
    assert isinstance(reply, LoggedIn), reply


async def shared_file(member, tmp_path, size: int) -> tuple[str, object]:
    """Alice sends Bob a file of ``size`` bytes; return its id and Bob."""
    alice = await member("alice")
    bob = await member("bob")
    await befriend(alice, bob)
    source = tmp_path / "shared.bin"
    source.write_bytes(os.urandom(size))
    sent = await Transfers(alice.session, alice.store, tmp_path / "dl").send(
        "bob", source
    )
    assert sent.state == "done"
    offered = await next_of(bob.session, FileOffered)
    await alice.session.close()
    return offered.file.file_id, bob


def download(file_id: str, rid: int = 9) -> bytes:
    return encode_message(DownloadFile(rid=rid, file_id=file_id, offset=0))


async def test_downloads_ended_without_progress_give_their_slots_back(
    server, member, tmp_path, caplog
):
    file_id, _ = await shared_file(member, tmp_path, 3000)
    host, port = server.address
    async with raw_connect(host, port) as raw:
        await login(raw, "alice")
        ids = [raw.open_stream(download(file_id), end=True) for _ in range(8)]
        assert await raw.until(lambda: raw.stream_ended.issuperset(ids))
        # A slot is given back when the server's task for it has finished,
        # which may be a little after the client read the stream's end (CI
        # once sent the next request first: "at most 8 transfers at once").
        await eventually(lambda: not server.files.streams_per_user)
        unknown = raw.open_stream(download("0" * 32), end=True)
        assert await raw.until(lambda: unknown in raw.stream_ended)
        (error,) = raw.stream_frames[unknown]
        assert isinstance(error, Error) and error.code == ErrorCode.NOT_FOUND
    await eventually(lambda: not server.files.streams_per_user)
    async with raw_connect(host, port) as raw:
        await login(raw, "alice")
        sid = raw.open_stream(download(file_id))
        assert await raw.until(lambda: raw.stream_frames.get(sid))
        assert isinstance(raw.stream_frames[sid][0], FileData)
    assert errors_logged(caplog) == []


async def test_cancel_after_the_download_was_sent_tells_the_other_side(
    server, member, tmp_path, caplog
):
    file_id, bob = await shared_file(member, tmp_path, 5000)
    host, port = server.address
    async with raw_connect(host, port) as raw:
        await login(raw, "alice")
        sid = raw.open_stream(download(file_id))
        # The whole file went out; its acknowledgement never comes.
        assert await raw.until(lambda: sid in raw.stream_ended)
        reply = await raw.request(CancelFile(rid=2, file_id=file_id))
        assert isinstance(reply, Ok), reply
        cancelled = await next_of(bob.session, FileCancelled, timeout=5)
        assert cancelled.file_id == file_id and cancelled.by == "alice"
    await eventually(lambda: not server.files.streams_per_user)
    assert errors_logged(caplog) == []


async def test_stop_sending_on_a_download_ends_it_quietly(
    server, member, tmp_path, caplog
):
    file_id, _ = await shared_file(member, tmp_path, 3 * 1024 * 1024)
    host, port = server.address
    async with raw_connect(host, port) as raw:
        await login(raw, "alice")
        sid = raw.open_stream(download(file_id))
        assert await raw.until(lambda: len(raw.stream_data.get(sid, b"")) > 100_000)
        raw._quic.stop_stream(sid, 0)
        raw.transmit()
        assert await raw.until(lambda: sid in raw.resets)
        await eventually(lambda: not server.files.streams_per_user)
        reply = await raw.request(GetProfile(rid=3))
        assert isinstance(reply, ProfileInfo), reply
    assert errors_logged(caplog) == []


async def test_an_earlier_stream_arriving_late_is_still_answered(server, user):
    await user("olive")
    host, port = server.address
    async with raw_connect(host, port) as raw:
        await login(raw, "olive")
        first = raw._quic.get_next_available_stream_id()
        raw._quic.send_stream_data(first, b"")  # opened here, nothing sent yet
        later = raw._quic.get_next_available_stream_id()
        # Stream `later` reaches the server before stream `first` (as when the
        # first packet of `first` was lost).
        raw.send_raw(download("0" * 32, rid=21), later, end=True)
        assert await raw.until(lambda: later in raw.stream_ended)
        raw.send_raw(download("1" * 32, rid=20), first, end=True)
        assert await raw.until(lambda: first in raw.stream_ended)
        assert raw.stream_frames[first][0].rid == 20
        assert raw.stream_frames[later][0].rid == 21


async def test_nested_msgpack_is_refused_and_the_next_request_still_answered(
    server, user, caplog
):
    host, port = server.address
    async with raw_connect(host, port) as raw:
        nested = len(NESTED).to_bytes(4, "big") + NESTED
        valid = encode_message(GetProfile(rid=5))
        raw.send_raw(nested + valid)
        error, refused = await raw.wait_for(2)
        assert isinstance(error, Error) and error.code == ErrorCode.BAD_FRAME
        assert error.rid is None
        assert isinstance(refused, Error) and refused.rid == 5
        assert refused.code == ErrorCode.NOT_AUTHENTICATED
        sid = raw.open_stream(nested, end=True)
        assert await raw.until(lambda: sid in raw.stream_ended)
        assert raw.stream_frames[sid][0].code == ErrorCode.BAD_FRAME
        big_rid = msgspec.msgpack.encode({"type": "GetProfile", "rid": 2**60})
        raw.send_raw(len(big_rid).to_bytes(4, "big") + big_rid)
        replies = await raw.wait_for(3)
        assert replies[2].rid is None and replies[2].code == ErrorCode.INVALID_MESSAGE
    assert errors_logged(caplog) == []


@pytest.fixture
async def strict_server(tmp_path):
    """A server that closes a connection after five refused inputs in a row."""
    app = ServerApp(server_config(tmp_path, abuse_strikes=5))
    await app.start()
    yield app
    await app.shutdown(grace=0.0)


async def test_unidirectional_streams_are_refused_and_strike(strict_server, caplog):
    host, port = strict_server.address
    async with raw_connect(host, port) as raw:
        raw.send(GetProfile(rid=1))
        await raw.wait_for(1)
        sid = raw._quic.get_next_available_stream_id(is_unidirectional=True)
        for _ in range(5):
            raw.send_raw(b"x" * 500, sid)
        first = await raw.wait_for(2)
        assert first[1].code == ErrorCode.UNEXPECTED_MESSAGE
        for _ in range(10):
            sid = raw._quic.get_next_available_stream_id(is_unidirectional=True)
            raw.send_raw(b"y" * 100, sid)
        assert await raw.until(lambda: raw.terminated is not None)
        assert raw.terminated.error_code == CloseCode.PROTOCOL_VIOLATION
    assert errors_logged(caplog) == []


async def test_stop_sending_with_the_request_in_one_packet(server, user, caplog):
    """aioquic resets our side before we see the request: the answer is
    dropped quietly and the stream still ends on both sides."""
    await user("pete")
    host, port = server.address
    async with raw_connect(host, port) as raw:
        await login(raw, "pete")
        sid = raw._quic.get_next_available_stream_id()
        # Refused as it is read (a file id must have 32 characters).
        raw._quic.send_stream_data(sid, download("short"), True)
        raw._quic.stop_stream(sid, 0)
        raw.transmit()
        assert await raw.until(lambda: sid in raw.resets)
        reply = await raw.request(GetProfile(rid=4))
        assert isinstance(reply, ProfileInfo), reply
    assert errors_logged(caplog) == []
