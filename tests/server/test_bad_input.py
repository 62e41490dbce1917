"""Malformed and hostile input over real QUIC: typed errors, no damage, no spill."""

import asyncio
import os
import random
import socket
import struct

import msgspec
import pytest

from client import ServerError
from codec import CloseCode, ErrorCode, encode_message
from codec.messages import Error, GetProfile, Login, PutAvatar, Register, SearchUsers
from server.storage.models import AuthSession, User
from tests.conftest import PASSWORD

from .rawclient import raw_connect


async def _snapshot(server):
    def read():
        users = [
            (u.username, u.password_hash, u.display_name, u.mood) for u in User.select()
        ]
        sessions = [s.token_hash for s in AuthSession.select()]
        return users, sessions

    return await server.storage.run(read)


def _frame(obj) -> bytes:
    body = msgspec.msgpack.encode(obj)
    return struct.pack(">I", len(body)) + body


BAD_FRAMES = [
    (_frame({"type": "Nope", "rid": 1}), ErrorCode.UNKNOWN_TYPE, 1),
    (struct.pack(">I", 3) + b"\xc1\xc1\xc1", ErrorCode.BAD_FRAME, None),
    (_frame([1, 2, 3]), ErrorCode.INVALID_MESSAGE, None),
    (
        _frame({"type": "Login", "rid": 2, "username": 5, "password": "x"}),
        ErrorCode.INVALID_MESSAGE,
        2,
    ),
    (
        _frame(
            {"type": "Register", "rid": 3, "username": "u" * 10_000, "password": "p"}
        ),
        ErrorCode.INVALID_MESSAGE,
        3,
    ),
    (
        _frame({"type": "SearchUsers", "rid": 4, "prefix": "a", "limit": 10**6}),
        ErrorCode.INVALID_MESSAGE,
        4,
    ),
    (_frame({"type": "Ok", "rid": 5}), ErrorCode.UNEXPECTED_MESSAGE, 5),
    (
        _frame({"type": "PutAvatar", "rid": 6, "size": 1}),
        ErrorCode.UNEXPECTED_MESSAGE,
        6,
    ),
    (_frame({"type": "GetProfile", "rid": 7}), ErrorCode.NOT_AUTHENTICATED, 7),
    (struct.pack(">I", 70_000) + b"z" * 70_000, ErrorCode.FRAME_TOO_LARGE, None),
]


async def test_each_bad_frame_gets_a_typed_error_and_the_connection_survives(
    server, user
):
    await user("victim")
    before = await _snapshot(server)
    host, port = server.address
    async with raw_connect(host, port) as client:
        for data, code, rid in BAD_FRAMES:
            reply = None
            before_count = len(client.received)
            client.send_raw(data)
            received = await client.wait_for(before_count + 1)
            reply = received[before_count]
            assert isinstance(reply, Error), reply
            assert (reply.code, reply.rid) == (code, rid), reply
            assert reply.message
        ok = await client.request(Login(rid=99, username="victim", password=PASSWORD))
        assert type(ok).__name__ == "LoggedIn"
    after = await _snapshot(server)
    assert after[0] == before[0]


async def test_huge_strings_and_other_users_data(server, user):
    alice = await user("alice")
    await user("bob")
    before = await _snapshot(server)
    with pytest.raises(ServerError) as info:
        await alice.update_profile(mood="m" * 60_000)
    assert info.value.code == ErrorCode.INVALID_MESSAGE
    # There is no request that names another user's private data: profiles of
    # others are read-only, and updates only ever touch the caller's own row.
    other = await alice.get_profile("bob")
    assert other.username == "bob"
    after = await _snapshot(server)
    assert [u for u in after[0] if u[0] == "bob"] == [
        u for u in before[0] if u[0] == "bob"
    ]


async def test_truncated_frame_then_stream_end_closes_only_that_connection(
    server, user
):
    bystander = await user("bystander")
    host, port = server.address
    async with raw_connect(host, port) as client:
        client.send_raw(b"\x00\x00\x01\x00abc", end=True)
        await client.wait_for(1, timeout=3)
        await asyncio.sleep(0.2)
    assert (await bystander.get_profile()).username == "bystander"


async def test_garbage_flood_is_disconnected_without_slowing_others(server, user):
    bystander = await user("calm")
    host, port = server.address
    async with raw_connect(host, port) as client:
        for _ in range(300):
            client.send_raw(struct.pack(">I", 2) + b"\xc1\xc1")
        await client.wait_for(10_000, timeout=5)
        assert client.terminated is not None
        assert client.terminated.error_code == CloseCode.PROTOCOL_VIOLATION
    assert server.stats["closed_for_abuse"] >= 1
    loop = asyncio.get_running_loop()
    start = loop.time()
    await bystander.get_profile()
    assert loop.time() - start < 1.0


async def test_request_flood_is_rate_limited_then_disconnected(server, user):
    bystander = await user("steady")
    await user("rusher")
    host, port = server.address
    async with raw_connect(host, port) as client:
        login = await client.request(Login(rid=1, username="rusher", password=PASSWORD))
        assert type(login).__name__ == "LoggedIn"
        await asyncio.sleep(0.3)
        blob = b"".join(encode_message(GetProfile(rid=10 + i)) for i in range(600))
        client.send_raw(blob)
        await client.wait_for(10_000, timeout=5)
        codes = [m.code for m in client.received if isinstance(m, Error)]
        assert ErrorCode.RATE_LIMITED in codes
        assert client.terminated is not None
        assert client.terminated.error_code == CloseCode.ABUSE
    assert (await bystander.get_profile()).username == "steady"


async def test_the_refusals_before_an_abuse_close_reach_the_client(server, user):
    """The flood arrives in one datagram, so the server reads it in one burst
    and closes in the middle of it: the refusals it queued before the close
    still go out ahead of the CONNECTION_CLOSE (a close throws away the stream
    data aioquic holds, and the burst's transmit comes only after it)."""
    await user("hasty")
    server.config.request_burst = 5.0
    server.config.abuse_strikes = 4
    host, port = server.address
    async with raw_connect(host, port) as client:
        login = await client.request(Login(rid=1, username="hasty", password=PASSWORD))
        assert type(login).__name__ == "LoggedIn"
        blob = b"".join(encode_message(GetProfile(rid=10 + i)) for i in range(30))
        assert len(blob) < 1000
        client.send_raw(blob)
        await client.wait_for(10_000, timeout=5)
        assert client.terminated is not None
        assert client.terminated.error_code == CloseCode.ABUSE
        refused = [
            m
            for m in client.received
            if isinstance(m, Error) and m.code == ErrorCode.RATE_LIMITED
        ]
        # Four strikes allowed, the fifth refusal closes: all five are told.
        assert len(refused) >= 5


async def test_flooder_does_not_delay_another_client(server, user):
    calm = await user("quiet")
    await user("noisy")
    host, port = server.address
    async with raw_connect(host, port) as client:
        await client.request(Register(rid=1, username="flooder", password=PASSWORD))
        await client.request(Login(rid=2, username="flooder", password=PASSWORD))
        blob = b"".join(
            encode_message(SearchUsers(rid=10 + i, prefix="n")) for i in range(150)
        )
        client.send_raw(blob)
        loop = asyncio.get_running_loop()
        worst = 0.0
        for _ in range(20):
            start = loop.time()
            await calm.search("q")
            worst = max(worst, loop.time() - start)
        assert worst < 0.5


async def test_bad_upload_streams(server, user):
    await user("uploader")
    host, port = server.address
    async with raw_connect(host, port) as client:
        await client.request(Login(rid=1, username="uploader", password=PASSWORD))
        bad_first = client._quic.get_next_available_stream_id()
        client.send_raw(
            _frame({"type": "Login", "rid": 5}), stream_id=bad_first, end=True
        )
        too_big = client._quic.get_next_available_stream_id()
        client.send_raw(encode_message(PutAvatar(rid=6, size=10**9)), stream_id=too_big)
        short = client._quic.get_next_available_stream_id()
        client.send_raw(
            encode_message(PutAvatar(rid=7, size=100)) + b"x" * 10,
            stream_id=short,
            end=True,
        )
        await asyncio.sleep(0.5)
        replies = {sid: frames[0] for sid, frames in client.stream_frames.items()}
        assert replies[bad_first].code == ErrorCode.UNEXPECTED_MESSAGE
        assert replies[too_big].code == ErrorCode.TOO_LARGE
        assert replies[short].code == ErrorCode.INVALID_ARGUMENT
        ok = await client.request(GetProfile(rid=8))
        assert type(ok).__name__ == "ProfileInfo"


async def test_random_udp_bytes_change_nothing(server, user):
    alice = await user("udpvictim")
    before = await _snapshot(server)
    host, port = server.address
    rng = random.Random(1234)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(2000):
            size = rng.choice([1, 20, 100, 1200, 1500])
            data = bytes(rng.getrandbits(8) for _ in range(size))
            if i % 3 == 0:
                data = bytes([0xC0 | (data[0] & 0x3F)]) + b"\x00\x00\x00\x01" + data[5:]
            sock.sendto(data, (host, port))
        sock.sendto(os.urandom(65_000), (host, port))
    finally:
        sock.close()
    await asyncio.sleep(0.3)
    assert (await alice.get_profile()).username == "udpvictim"
    assert await _snapshot(server) == before
