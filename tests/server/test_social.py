"""Friends, presence and chat between real clients over real QUIC."""

import asyncio
import io

import pytest
from PIL import Image

from client import ServerError
from codec import ErrorCode
from codec.messages import (
    AckMessages,
    ChatMessage,
    Delivered,
    FriendAccepted,
    FriendRemoved,
    FriendRequestCancelled,
    FriendRequestDeclined,
    FriendRequested,
    MarkRead,
    Ok,
    PresenceChanged,
    ProfileChanged,
    ReadReceipt,
    TypingChanged,
)
from tests.conftest import address, befriend, close_member, next_of, open_member


@pytest.mark.stores
async def test_friend_request_accept_and_list(member):
    alice = await member("alice")
    bob = await member("bob")
    await alice.friends.request("bob", note="hi from alice")
    request = await next_of(bob.session, FriendRequested)
    assert request.request.profile.username == "alice"
    assert request.request.note == "hi from alice"
    listing = await bob.friends.list()
    assert [r.profile.username for r in listing.incoming] == ["alice"]
    assert [r.profile.username for r in (await alice.friends.list()).outgoing] == [
        "bob"
    ]
    await bob.friends.accept("alice")
    accepted = await next_of(alice.session, FriendAccepted)
    assert accepted.friend.profile.username == "bob"
    assert accepted.friend.presence == "online"
    friends = (await alice.friends.list()).friends
    assert [(f.profile.username, f.presence) for f in friends] == [("bob", "online")]
    with pytest.raises(ServerError) as info:
        await alice.friends.request("bob")
    assert info.value.code == ErrorCode.CONFLICT


async def test_request_to_an_offline_user_is_delivered_at_login(
    server, member, tmp_path
):
    alice = await member("carol")
    dave = await member("dave")
    await dave.session.close()
    await alice.friends.request("dave", note="later")
    dave_again = await open_member(
        address(server), "dave", tmp_path / "homes" / "dave2", register=False
    )
    try:
        request = await next_of(dave_again.session, FriendRequested)
        assert request.request.profile.username == "carol"
        await dave_again.friends.accept("carol")
        await next_of(alice.session, FriendAccepted)
    finally:
        await close_member(dave_again)


@pytest.mark.stores
async def test_decline_cancel_remove_block(member):
    a = await member("erin")
    b = await member("frank")
    await a.friends.request("frank")
    await b.friends.decline("erin")
    assert (await next_of(a.session, FriendRequestDeclined)).username == "frank"
    await a.friends.request("frank")
    await a.friends.cancel("frank")
    assert (await next_of(b.session, FriendRequestCancelled)).username == "erin"
    with pytest.raises(ServerError) as info:
        await b.friends.accept("erin")
    assert info.value.code == ErrorCode.NOT_FOUND
    await a.friends.request("frank")
    await b.friends.request("erin")  # a mutual request is an accept
    await next_of(a.session, FriendAccepted)
    await a.friends.remove("frank")
    assert (await next_of(a.session, FriendRemoved)).username == "frank"
    assert (await next_of(b.session, FriendRemoved)).username == "erin"
    assert (await b.friends.list()).friends == []
    await befriend(a, b)
    await b.friends.block("erin")
    assert (await next_of(a.session, FriendRemoved)).username == "frank"
    with pytest.raises(ServerError) as info:
        await a.friends.request("frank")
    assert info.value.code == ErrorCode.FORBIDDEN
    assert (await b.friends.list()).blocked == ["erin"]
    await b.friends.unblock("erin")
    await a.friends.request("frank")


async def test_presence_is_pushed_to_friends_only(member):
    a = await member("gina")
    b = await member("hank")
    stranger = await member("ivan")
    await befriend(a, b)
    initial = await next_of(a.session, PresenceChanged)
    assert (initial.username, initial.presence) == ("hank", "online")
    await b.friends.set_presence("away")
    loop = asyncio.get_running_loop()
    start = loop.time()
    change = await next_of(a.session, PresenceChanged)
    assert (change.username, change.presence) == ("hank", "away")
    assert loop.time() - start < 1.0
    await b.session.close()
    change = await next_of(a.session, PresenceChanged)
    assert (change.username, change.presence) == ("hank", "offline")
    assert change.last_seen_ms > 0
    friends = (await a.friends.list()).friends
    assert friends[0].presence == "offline"
    await asyncio.sleep(0.2)
    while not stranger.session._events.empty():
        assert not isinstance(stranger.session._events.get_nowait(), PresenceChanged)


async def test_profile_changes_are_pushed_to_friends_only(member):
    a = await member("pat")
    b = await member("quentin")
    stranger = await member("rhea")
    await befriend(a, b)
    await b.session.update_profile(display_name="Quentin Q", mood="on the road")
    change = await next_of(a.session, ProfileChanged)
    assert change.profile.username == "quentin"
    assert (change.profile.display_name, change.profile.mood) == (
        "Quentin Q",
        "on the road",
    )
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 120, 200)).save(out, format="PNG")
    await b.session.set_avatar(out.getvalue())
    pictured = await next_of(a.session, ProfileChanged)
    assert pictured.profile.avatar_sha256 is not None
    assert pictured.profile.display_name == "Quentin Q"
    await b.session.update_profile()
    await a.session.update_profile(mood="unchanged for quentin")
    await asyncio.sleep(0.2)
    for session in (a.session, stranger.session):
        while not session._events.empty():
            assert not isinstance(session._events.get_nowait(), ProfileChanged)


async def test_vanished_friend_turns_offline_within_ten_seconds(member):
    a = await member("jill")
    b = await member("kurt")
    await befriend(a, b)
    await next_of(a.session, PresenceChanged)
    proto = b.session._proto
    proto._keepalive.cancel()
    if proto._timer is not None:
        proto._timer.cancel()
    proto._transport.close()
    change = await next_of(a.session, PresenceChanged, timeout=10)
    assert change.presence == "offline"
    b.session._proto = None


@pytest.mark.stores
async def test_chat_delivery_receipts_history_and_search(server, member):
    a = await member("lena")
    b = await member("mike")
    await befriend(a, b)
    sent = await a.chat.send("mike", "Hello Mike, café at noon?")
    # Delivered may come in the same burst as the reply (the receipt below
    # says it was).
    assert sent.state in ("sent", "delivered") and sent.seq == 1
    message = await next_of(b.session, ChatMessage)
    assert (message.sender, message.text, message.seq) == (
        "lena",
        "Hello Mike, café at noon?",
        1,
    )
    delivered = await next_of(a.session, Delivered)
    assert (delivered.peer, delivered.up_to_seq) == ("mike", 1)
    await b.chat.send("lena", "sure")
    await next_of(a.session, ChatMessage)
    await b.chat.mark_read("lena", 1)
    receipt = await next_of(a.session, ReadReceipt)
    assert receipt.up_to_seq == 1
    await a.chat.drain()
    history = await a.chat.history("mike")
    assert [(m.text, m.outgoing, m.seq) for m in history] == [
        ("Hello Mike, café at noon?", True, 1),
        ("sure", False, 2),
    ]
    assert history[0].state == "read"
    assert [m.text for m in await b.chat.search("CAFE")] == [
        "Hello Mike, café at noon?"
    ]
    await b.chat.typing("lena")
    typing = await next_of(a.session, TypingChanged)
    assert typing.username == "mike" and typing.typing
    # Operators see the chat store's commits: two messages and the read
    # receipt at least, in as many batches or fewer.
    stats = server.snapshot()
    assert stats["chat_ops_committed"] >= 3
    assert 1 <= stats["chat_batches"] <= stats["chat_ops_committed"]


async def test_only_friends_chat_and_limits(member):
    a = await member("nora")
    b = await member("olaf")
    with pytest.raises(ServerError) as info:
        await a.chat.send("olaf", "hi")
    assert info.value.code == ErrorCode.FORBIDDEN
    assert (await a.chat.history("olaf"))[0].state == "failed"
    await befriend(a, b)
    with pytest.raises(ServerError) as info:
        await a.chat.send("olaf", "é" * 4097)
    assert info.value.code == ErrorCode.TOO_LARGE
    assert (await a.chat.send("olaf", "x" * 8192)).state in ("sent", "delivered")


@pytest.mark.stores
async def test_a_message_with_a_nul_character_is_refused_on_every_database(member):
    """PostgreSQL's text cannot hold NUL; refused before it reaches the
    store, where it would fail the batch of messages committed with it."""
    a = await member("nina")
    b = await member("otto")
    await befriend(a, b)
    with pytest.raises(ServerError) as info:
        await a.chat.send("otto", "before\x00after")
    assert info.value.code == ErrorCode.INVALID_ARGUMENT
    assert "NUL" in str(info.value)
    assert (await a.chat.send("otto", "fine")).state in ("sent", "delivered")


@pytest.mark.stores
async def test_offline_recipient_gets_messages_at_next_login(server, member, tmp_path):
    a = await member("pia")
    b = await member("quinn")
    await befriend(a, b)
    await b.chat.send("pia", "before")
    await next_of(a.session, ChatMessage)
    await b.session.close()
    for i in range(5):
        assert (await a.chat.send("quinn", f"while away {i}")).state == "sent"
    again = await open_member(
        address(server), "quinn", tmp_path / "homes" / "quinn", register=False
    )
    try:
        await again.chat.synced.wait()
        await again.chat.drain()
        texts = [m.text for m in await again.chat.history("pia")]
        assert texts == ["before"] + [f"while away {i}" for i in range(5)]
        delivered = await next_of(a.session, Delivered)
        assert delivered.up_to_seq == 6
    finally:
        await close_member(again)


@pytest.mark.stores
async def test_retry_with_the_same_client_id_is_not_duplicated(member):
    from codec.messages import MessageAccepted, SendMessage

    a = await member("rita")
    b = await member("sam")
    await befriend(a, b)
    first = await a.session.call(
        SendMessage, MessageAccepted, to="sam", client_id="fixed-id", text="once"
    )
    again = await a.session.call(
        SendMessage, MessageAccepted, to="sam", client_id="fixed-id", text="once"
    )
    assert again.duplicate and again.seq == first.seq
    await asyncio.sleep(0.3)
    await b.chat.drain()
    assert [m.text for m in await b.chat.history("rita")] == ["once"]


async def test_flooding_is_rate_limited_without_delaying_others(member):
    flooder = await member("flood")
    victim = await member("target")
    c = await member("calm1")
    d = await member("calm2")
    await befriend(flooder, victim)
    await befriend(c, d)
    from codec.messages import SendMessage

    proto = await flooder.session.wait_ready(1)
    flood = [
        asyncio.ensure_future(
            proto.request(
                SendMessage(
                    rid=proto.next_rid(), to="target", client_id=f"f{i}", text="x"
                )
            )
        )
        for i in range(400)
    ]
    loop = asyncio.get_running_loop()
    latencies = []
    for i in range(10):
        start = loop.time()
        await c.chat.send("calm2", f"normal {i}")
        latencies.append(loop.time() - start)
    results = await asyncio.gather(*flood, return_exceptions=True)
    limited = [r for r in results if isinstance(r, ServerError)]
    assert limited and all(r.code == ErrorCode.RATE_LIMITED for r in limited)
    assert max(latencies) < 0.5


async def test_a_send_whose_task_never_starts_is_delivered_and_leaves_nothing(
    server, member
):
    # A pipelined send's reply is awaited in a task of its own; a task cancelled
    # before its first step (its connection or the server stopping) never runs
    # its coroutine. The message is committed all the same: it must still reach
    # its recipient, and nothing may be left that was never awaited.
    import gc
    import warnings

    from codec.messages import SendMessage
    from server.storage.models import User

    a = await member("ursula")
    b = await member("viktor")
    await befriend(a, b)
    user_id = await server.storage.run(lambda: User.get(User.username == "ursula").id)
    conn = server.context.presence.local_connection(user_id)
    request = SendMessage(rid=10**6, to="viktor", client_id="never-started", text="hi")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task = asyncio.get_running_loop().create_task(
            server.router.start(conn, request)
        )
        task.cancel()
        event = await next_of(b.session, ChatMessage, timeout=5)
        assert (event.text, event.client_id) == ("hi", "never-started")
        assert task.cancelled()
        del task
        gc.collect()
    assert [str(w.message) for w in caught if w.category is RuntimeWarning] == []


async def test_receipts_go_only_to_whom_one_chats_with(member):
    a = await member("nora")
    b = await member("omar")
    eve = await member("eve")
    await befriend(a, b)
    for request in (AckMessages, MarkRead):
        with pytest.raises(ServerError) as info:
            await eve.session.call(request, Ok, peer="nora", up_to_seq=5)
        assert info.value.code == ErrorCode.NOT_FOUND
    await a.chat.send("omar", "hi")
    await next_of(b.session, ChatMessage)
    # A receipt past the conversation's last message claims no more than it.
    await b.session.call(MarkRead, Ok, peer="nora", up_to_seq=10**6)
    receipts = []
    while len(receipts) < 2:
        event = await next_of(a.session, (Delivered, ReadReceipt), timeout=5)
        receipts.append((type(event).__name__, event.peer, event.up_to_seq))
    assert sorted(receipts) == [("Delivered", "omar", 1), ("ReadReceipt", "omar", 1)]
    # The stranger's receipts never reached Nora.
    assert all(peer != "eve" for _, peer, _ in receipts)
    # Someone who is no longer a friend may still acknowledge what they got.
    await b.friends.remove("nora")
    await b.session.call(AckMessages, Ok, peer="nora", up_to_seq=1)
