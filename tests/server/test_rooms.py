"""Meeting rooms over real QUIC: membership, hosts, invitations, chat, tracks."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client import ServerError, Session
from codec.errors import ErrorCode
from codec.messages import (
    InvitationDeclined,
    MuteRequested,
    Ok,
    RequestFriend,
    RespondFriend,
    RoomChat,
    RoomInvitation,
    RoomLeft,
    RoomUpdated,
)
from codec.messages.rooms import ROOM_ID_ALPHABET, parse_room_id
from server import ServerApp
from server.room_state import new_room_id
from tests.conftest import PASSWORD, address, eventually, server_config


class Recorder:
    """Collects the room events one session's listeners see."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.events: list[object] = []
        session.rooms.add_listener(self.events.append)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    def members(self) -> list[str]:
        state = self.session.rooms.state
        return [] if state is None else [m.username for m in state.members]


async def expect_error(code: ErrorCode, coro) -> ServerError:
    with pytest.raises(ServerError) as info:
        await coro
    assert info.value.code == code, info.value
    return info.value


async def make_friends(a: Session, b: Session) -> None:
    assert a.profile and b.profile
    await a.call(RequestFriend, Ok, username=b.profile.username)
    await b.call(RespondFriend, Ok, username=a.profile.username, accept=True)


def vanish(session: Session) -> None:
    """Drop the connection without a word, as a killed process does."""
    proto = session._proto
    assert proto is not None
    session.reconnect = False
    proto._keepalive.cancel()
    if proto._timer is not None:
        proto._timer.cancel()
    proto._transport.close()
    session._proto = None


@pytest.fixture
async def small_server(tmp_path):
    """A server with small limits, a short empty-room life and fast liveness."""
    app = ServerApp(
        server_config(
            tmp_path,
            max_room_members=3,
            empty_room_ttl=0.3,
            idle_timeout=3.0,
            room_join_rate=50.0,
        )
    )
    await app.start()
    yield app
    await app.shutdown(grace=0.0)


@pytest.fixture
async def small_user(small_server):
    sessions: list[Session] = []

    async def _user(name: str) -> Session:
        session = Session(address(small_server))
        await session.connect()
        sessions.append(session)
        await session.register(name, PASSWORD)
        await session.login(name, PASSWORD)
        return session

    yield _user
    for session in sessions:
        await session.close()


def test_room_ids_are_typable():
    assert parse_room_id("ABC DEF GHJK") == "abc-def-ghjk"
    assert parse_room_id("abcdefghjk") == "abc-def-ghjk"
    assert parse_room_id(" abc-def-ghjk ") == "abc-def-ghjk"
    for bad in ("abc-def-ghj", "abc-def-ghjkm", "abc-def-ghj0", "abc-def-ghjl", ""):
        assert parse_room_id(bad) is None
    assert not set("0o1li") & set(ROOM_ID_ALPHABET)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_text_parses_to_a_canonical_room_id_or_nothing(text):
    room_id = parse_room_id(text)
    if room_id is not None:
        assert parse_room_id(room_id) == room_id
        assert len(room_id) == 12 and room_id[3] == room_id[7] == "-"


def test_new_room_ids_are_canonical_and_spread():
    ids = {new_room_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(parse_room_id(i) == i for i in ids)
    assert set("".join(ids).replace("-", "")) == set(ROOM_ID_ALPHABET)


async def test_members_see_each_other_join_and_leave(server, user):
    alice, bob, carol = await user("alice"), await user("bob"), await user("carol")
    seen = Recorder(alice)
    state = await alice.rooms.create()
    assert parse_room_id(state.room_id) == state.room_id
    assert state.host == "alice" and [m.username for m in state.members] == ["alice"]
    assert alice.rooms.is_host

    typed = state.room_id.replace("-", " ").upper()
    joined = await bob.rooms.join(typed)
    assert joined.room_id == state.room_id
    assert [m.username for m in joined.members] == ["alice", "bob"]
    await carol.rooms.join(state.room_id)
    await eventually(lambda: seen.members() == ["alice", "bob", "carol"])
    assert bob.rooms.state.host == "alice"

    await bob.rooms.leave()
    assert bob.rooms.state is None
    await eventually(lambda: seen.members() == ["alice", "carol"])
    await eventually(lambda: carol.rooms.state.members[-1].username == "carol")
    assert [m.username for m in carol.rooms.state.members] == ["alice", "carol"]
    versions = [e.room.version for e in seen.of(RoomUpdated)]
    assert versions == sorted(versions)
    await expect_error(ErrorCode.NOT_FOUND, bob.rooms.leave())
    assert server.snapshot()["room_members"] == 2


async def test_password_is_required_and_checked(server, user):
    alice, bob = await user("alice"), await user("bob")
    state = await alice.rooms.create(password="open sesame")
    assert state.has_password
    error = await expect_error(ErrorCode.FORBIDDEN, bob.rooms.join(state.room_id))
    assert "needs a password" in error.message
    error = await expect_error(
        ErrorCode.FORBIDDEN, bob.rooms.join(state.room_id, "open says me")
    )
    assert "wrong room password" in error.message
    await bob.rooms.join(state.room_id, "open sesame")
    await expect_error(ErrorCode.NOT_FOUND, bob.rooms.join("zzz-zzz-zzzz"))
    await expect_error(ErrorCode.NOT_FOUND, bob.rooms.join("not a room id"))


async def test_joining_is_rate_limited_per_connection(server, user):
    alice, mallory = await user("alice"), await user("mallory")
    await alice.rooms.create()
    for _ in range(5):
        await expect_error(ErrorCode.NOT_FOUND, mallory.rooms.join("abc-def-ghjk"))
    error = await expect_error(
        ErrorCode.RATE_LIMITED, mallory.rooms.join("abc-def-ghjk")
    )
    assert error.retry_after_ms and error.retry_after_ms <= 1001


async def test_failed_joins_back_off_per_account_and_address(small_server, small_user):
    mallory = await small_user("mallory")
    for _ in range(10):
        await expect_error(ErrorCode.NOT_FOUND, mallory.rooms.join("abc-def-ghjk"))
        await asyncio.sleep(0.05)  # stay under this server's 50 joins/s
    error = await expect_error(
        ErrorCode.LOGIN_THROTTLED, mallory.rooms.join("abc-def-ghjk")
    )
    assert error.retry_after_ms and error.retry_after_ms > 0
    # Another account from the same address is held back too.
    eve = await small_user("eve")
    await expect_error(ErrorCode.LOGIN_THROTTLED, eve.rooms.join("abc-def-ghjk"))


async def test_host_locks_removes_mutes_hands_over_and_ends(server, user):
    alice, bob, carol, dave = [await user(n) for n in ("alice", "bob", "carol", "dave")]
    state = await alice.rooms.create()
    room_id = state.room_id
    await bob.rooms.join(room_id)
    await carol.rooms.join(room_id)
    bob_seen, carol_seen = Recorder(bob), Recorder(carol)

    await expect_error(ErrorCode.FORBIDDEN, bob.rooms.lock())
    await alice.rooms.lock()
    await eventually(lambda: carol.rooms.state.locked)
    error = await expect_error(ErrorCode.FORBIDDEN, dave.rooms.join(room_id))
    assert "locked" in error.message
    await alice.rooms.lock(False)
    await eventually(lambda: not carol.rooms.state.locked)

    await alice.rooms.ask_to_mute("bob")
    await eventually(lambda: bob_seen.of(MuteRequested))
    assert bob_seen.of(MuteRequested)[0].by == "alice"
    await bob.rooms.set_muted(True)
    await eventually(lambda: carol.rooms.state.members[1].muted)

    await alice.rooms.remove("bob")
    await eventually(lambda: bob_seen.of(RoomLeft))
    assert bob_seen.of(RoomLeft)[0].reason == "removed"
    assert bob.rooms.state is None
    await eventually(lambda: carol_seen.members() == ["alice", "carol"])
    error = await expect_error(ErrorCode.FORBIDDEN, bob.rooms.join(room_id))
    assert "removed" in error.message
    await expect_error(ErrorCode.NOT_FOUND, alice.rooms.remove("bob"))
    await expect_error(ErrorCode.INVALID_ARGUMENT, alice.rooms.remove("alice"))

    await alice.rooms.make_host("carol")
    await eventually(lambda: carol.rooms.is_host)
    assert [m.host for m in carol.rooms.state.members] == [False, True]
    await expect_error(ErrorCode.FORBIDDEN, alice.rooms.end())

    alice_seen = Recorder(alice)
    await carol.rooms.end()
    await eventually(lambda: alice_seen.of(RoomLeft) and carol_seen.of(RoomLeft))
    assert alice_seen.of(RoomLeft)[0].reason == "ended"
    assert alice.rooms.state is None and carol.rooms.state is None
    await expect_error(ErrorCode.NOT_FOUND, dave.rooms.join(room_id))
    assert server.snapshot()["rooms"] == 0


async def test_host_role_passes_on_and_an_empty_room_closes(small_server, small_user):
    alice, bob = await small_user("alice"), await small_user("bob")
    room_id = (await alice.rooms.create()).room_id
    await bob.rooms.join(room_id)
    await alice.rooms.leave()
    await eventually(lambda: bob.rooms.is_host)
    await bob.rooms.leave()
    # Empty, the room waits (0.3 s here) for someone to come back.
    state = await alice.rooms.join(room_id)
    assert state.host == "alice"
    await alice.rooms.leave()
    await asyncio.sleep(0.6)
    await expect_error(ErrorCode.NOT_FOUND, alice.rooms.join(room_id))
    assert small_server.snapshot()["rooms"] == 0


async def test_room_size_and_rooms_per_user_are_limited(small_server, small_user):
    alice, bob, carol, dave = [
        await small_user(n) for n in ("alice", "bob", "carol", "dave")
    ]
    room_id = (await alice.rooms.create()).room_id
    await bob.rooms.join(room_id)
    await carol.rooms.join(room_id)
    error = await expect_error(ErrorCode.ROOM_FULL, dave.rooms.join(room_id))
    assert "3 members" in error.message
    pair = await dave.rooms.create(max_members=2)
    assert pair.max_members == 2
    await carol.rooms.join(pair.room_id)
    await expect_error(ErrorCode.ROOM_FULL, bob.rooms.join(pair.room_id))
    # Creating a room leaves the one we were in; each stays open while empty.
    for _ in range(small_server.config.max_rooms_per_user - 1):
        await dave.rooms.create()
    await expect_error(ErrorCode.QUOTA_EXCEEDED, dave.rooms.create())


async def test_invitations_go_to_online_friends_and_admit(server, user):
    alice, bob, carol, dave = [await user(n) for n in ("alice", "bob", "carol", "dave")]
    await make_friends(alice, bob)
    await make_friends(alice, dave)
    room_id = (await alice.rooms.create(password="secret words")).room_id
    await alice.rooms.lock()
    bob_seen = Recorder(bob)

    await alice.rooms.invite("bob")
    await eventually(lambda: bob_seen.of(RoomInvitation))
    invitation = bob_seen.of(RoomInvitation)[0]
    assert (invitation.room_id, invitation.inviter) == (room_id, "alice")
    assert bob.rooms.invitations[room_id] == invitation
    state = await bob.rooms.accept(invitation)
    assert [m.username for m in state.members] == ["alice", "bob"]
    assert room_id not in bob.rooms.invitations

    error = await expect_error(ErrorCode.FORBIDDEN, alice.rooms.invite("carol"))
    assert "friends" in error.message
    await expect_error(ErrorCode.NOT_FOUND, alice.rooms.invite("nobody"))
    await expect_error(ErrorCode.CONFLICT, alice.rooms.invite("bob"))
    await dave.close()
    await eventually(lambda: server.presence.online_count() == 3)
    error = await expect_error(ErrorCode.NOT_FOUND, alice.rooms.invite("dave"))
    assert "not online" in error.message
    # Without an invitation the password and the lock still hold.
    await expect_error(ErrorCode.FORBIDDEN, carol.rooms.join(room_id, "secret words"))


async def test_a_new_display_name_shows_in_the_meeting_at_once(server, user):
    alice, bob = await user("alice"), await user("bob")
    room_id = (await alice.rooms.create()).room_id
    await bob.rooms.join(room_id)
    await bob.update_profile(display_name="Bob Builder")

    def shown() -> list[tuple[str, str]]:
        state = alice.rooms.state
        members = state.members if state is not None else []
        return [(m.username, m.display_name) for m in members]

    await eventually(lambda: ("bob", "Bob Builder") in shown())


async def test_a_declined_invitation_is_dropped_and_the_inviter_told(server, user):
    alice, bob, carol = [await user(n) for n in ("alice", "bob", "carol")]
    await make_friends(alice, bob)
    room_id = (await alice.rooms.create()).room_id
    await alice.rooms.lock()
    alice_seen, bob_seen = Recorder(alice), Recorder(bob)
    await alice.rooms.invite("bob")
    await eventually(lambda: bob_seen.of(RoomInvitation))

    await bob.rooms.decline(room_id)
    await eventually(lambda: alice_seen.of(InvitationDeclined))
    declined = alice_seen.of(InvitationDeclined)[0]
    assert (declined.room_id, declined.username) == (room_id, "bob")
    assert room_id not in bob.rooms.invitations
    # Declined, the invitation no longer opens the locked room...
    await expect_error(ErrorCode.FORBIDDEN, bob.rooms.join(room_id))
    # ...and cannot be declined twice, nor can one that was never made.
    await expect_error(ErrorCode.NOT_FOUND, bob.rooms.decline(room_id))
    await expect_error(ErrorCode.NOT_FOUND, carol.rooms.decline(room_id))
    await expect_error(ErrorCode.NOT_FOUND, carol.rooms.decline("no-such-room"))


async def test_chat_and_raised_hands_reach_every_member(server, user):
    alice, bob = await user("alice"), await user("bob")
    room_id = (await alice.rooms.create()).room_id
    await bob.rooms.join(room_id)
    alice_seen, bob_seen = Recorder(alice), Recorder(bob)
    await alice.rooms.chat("hello, bob")
    await bob.rooms.chat("hi ✋")
    await eventually(lambda: len(alice_seen.of(RoomChat)) == 2)
    await eventually(lambda: len(bob_seen.of(RoomChat)) == 2)
    lines = [(c.seq, c.sender, c.text) for c in alice_seen.of(RoomChat)]
    assert lines == [(1, "alice", "hello, bob"), (2, "bob", "hi ✋")]
    await expect_error(ErrorCode.TOO_LARGE, bob.rooms.chat("é" * 4000))

    await bob.rooms.raise_hand()
    await eventually(lambda: alice.rooms.state.members[1].hand_raised)
    await bob.rooms.raise_hand(False)
    await eventually(lambda: not alice.rooms.state.members[1].hand_raised)
    outsider = await user("outsider")
    await expect_error(ErrorCode.NOT_FOUND, outsider.rooms.chat("let me in"))


async def test_tracks_are_announced_and_end_with_their_member(server, user):
    alice, bob, carol = await user("alice"), await user("bob"), await user("carol")
    room_id = (await alice.rooms.create()).room_id
    await bob.rooms.join(room_id)
    await carol.rooms.join(room_id)
    camera = await bob.rooms.publish("camera", 640, 480, 30)
    screen = await bob.rooms.publish("screen", 1280, 720, 10)
    mic = await alice.rooms.publish("microphone")
    assert (camera.owner, camera.codec, camera.width) == ("bob", "h264", 640)
    assert mic.codec == "opus" and camera.track_id != screen.track_id
    expected = {camera.track_id, screen.track_id, mic.track_id}
    await eventually(lambda: {t.track_id for t in carol.rooms.state.tracks} == expected)
    await expect_error(ErrorCode.CONFLICT, bob.rooms.publish("camera", 320, 240, 15))
    await expect_error(ErrorCode.INVALID_ARGUMENT, carol.rooms.publish("camera"))
    await expect_error(ErrorCode.NOT_FOUND, alice.rooms.unpublish(camera.track_id))

    await bob.rooms.unpublish(screen.track_id)
    await eventually(lambda: len(carol.rooms.state.tracks) == 2)
    await bob.rooms.leave()
    await eventually(lambda: [t.owner for t in carol.rooms.state.tracks] == ["alice"])
    assert server.snapshot()["sfu_tracks"] == 1


async def test_closing_killing_kicking_and_logout_free_the_member(
    small_server, small_user
):
    alice, bob, carol = [await small_user(n) for n in ("alice", "bob", "carol")]
    room_id = (await alice.rooms.create()).room_id
    for other in (bob, carol):
        await other.rooms.join(room_id)
        await other.rooms.publish("camera", 320, 240, 15)
    await eventually(lambda: len(alice.rooms.state.tracks) == 2)

    await bob.close()
    await eventually(lambda: alice.rooms.state and len(alice.rooms.state.members) == 2)
    assert [t.owner for t in alice.rooms.state.tracks] == ["carol"]

    loop = asyncio.get_running_loop()
    vanish(carol)
    start = loop.time()
    await eventually(lambda: len(alice.rooms.state.members) == 1, timeout=8.0)
    assert loop.time() - start < 6.0
    assert alice.rooms.state.tracks == []
    assert small_server.snapshot()["sfu_connections"] == 1

    # A newer login elsewhere kicks the older connection out of the room.
    dave = await small_user("dave")
    await dave.rooms.join(room_id)
    await eventually(lambda: len(alice.rooms.state.members) == 2)
    elsewhere = Session(address(small_server))
    await elsewhere.connect()
    await elsewhere.login("dave", PASSWORD)
    await eventually(lambda: len(alice.rooms.state.members) == 1)
    await elsewhere.rooms.join(room_id)
    await eventually(lambda: len(alice.rooms.state.members) == 2)
    alice_seen = Recorder(elsewhere)
    await elsewhere.logout()
    await eventually(lambda: len(alice.rooms.state.members) == 1)
    assert alice_seen.of(RoomLeft)[0].message == "your session ended"
    await elsewhere.close()
    assert small_server.snapshot()["room_members"] == 1


async def test_a_resumed_session_keeps_its_seat_but_not_its_tracks(server, user):
    alice, bob = await user("alice"), await user("bob")
    room_id = (await alice.rooms.create()).room_id
    await bob.rooms.join(room_id)
    await bob.rooms.publish("camera", 320, 240, 15)
    await eventually(lambda: len(alice.rooms.state.tracks) == 1)
    assert bob.token is not None
    bob.reconnect = False

    moved = Session(address(server), reconnect=False)
    await moved.connect()
    await moved.resume(bob.token)
    await eventually(lambda: alice.rooms.state.tracks == [])
    assert [m.username for m in alice.rooms.state.members] == ["alice", "bob"]
    state = await moved.rooms.refresh()
    assert state.room_id == room_id
    await moved.rooms.leave()
    await eventually(lambda: len(alice.rooms.state.members) == 1)
    await moved.close()
