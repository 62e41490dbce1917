"""A transfer connection (``AttachTransfers``): a second connection of a live
session that carries its file streams only. Refused without a live session's
token, no login of its own (the session is not forced offline), and closed
when the session ends."""

import os

import pytest

from client import ServerError
from codec import ErrorCode
from codec.messages import AttachTransfers, GetProfile, ListFiles, Ok, ProfileInfo
from codec.messages.files import FileList
from tests.conftest import PASSWORD, eventually


async def test_refused_without_a_live_sessions_token(user, connect):
    alice = await user("alice")
    stranger = await connect()
    with pytest.raises(ServerError) as bad:
        await stranger.call(AttachTransfers, Ok, token=os.urandom(32))
    assert bad.value.code == ErrorCode.INVALID_TOKEN
    token = alice.token
    await alice.logout()
    with pytest.raises(ServerError) as revoked:
        await stranger.call(AttachTransfers, Ok, token=token)
    assert revoked.value.code == ErrorCode.INVALID_TOKEN
    # Refused, the connection is still a plain one: a login works on it.
    await stranger.login("alice", PASSWORD)


async def test_carries_transfers_only_and_keeps_the_session_online(user, connect):
    alice = await user("alice")
    pump = await connect()
    await pump.call(AttachTransfers, Ok, token=alice.token)
    with pytest.raises(ServerError) as refused:
        await pump.call(ListFiles, FileList)
    assert refused.value.code == ErrorCode.UNEXPECTED_MESSAGE
    # Nor can it become a login of its own.
    with pytest.raises(ServerError) as login:
        await pump.login("alice", PASSWORD)
    assert login.value.code == ErrorCode.UNEXPECTED_MESSAGE
    # The session's own connection was not forced offline by the attach.
    assert (await alice.call(GetProfile, ProfileInfo, username="alice")).profile
    assert alice.connected and pump.connected


@pytest.mark.parametrize("how", ["second_login", "logout", "closed"])
async def test_closed_when_the_session_ends(user, connect, server, how):
    alice = await user("alice")
    pump = await connect()
    await pump.call(AttachTransfers, Ok, token=alice.token)
    if how == "second_login":
        other = await connect()
        await other.login("alice", PASSWORD)
    elif how == "logout":
        await alice.logout()
    else:
        await alice.close()
    await eventually(lambda: not pump.connected)
    assert server.transfer_connections == {}
