import io

import pytest
from PIL import Image

from client import ServerError, SessionClosed
from codec import ErrorCode
from codec.messages import Kicked
from server.passwords import PasswordHasher
from server.storage.models import AuthSession, User
from tests.conftest import PASSWORD, address, eventually


@pytest.mark.stores
async def test_register_login_and_profile(user):
    alice = await user("Alice")
    assert alice.profile.username == "alice"
    profile = await alice.update_profile(display_name="Alice A.", mood="in a call")
    assert (profile.display_name, profile.mood) == ("Alice A.", "in a call")
    again = await alice.get_profile()
    assert again == profile


@pytest.mark.parametrize(
    ("name", "password", "code"),
    [
        ("ab", PASSWORD, ErrorCode.INVALID_USERNAME),
        ("a" * 33, PASSWORD, ErrorCode.INVALID_USERNAME),
        ("bad name", PASSWORD, ErrorCode.INVALID_USERNAME),
        ("ümlaut", PASSWORD, ErrorCode.INVALID_USERNAME),
        ("goodname", "short", ErrorCode.WEAK_PASSWORD),
    ],
)
async def test_register_validation(connect, name, password, code):
    session = await connect()
    with pytest.raises(ServerError) as info:
        await session.register(name, password)
    assert info.value.code == code


@pytest.mark.stores
async def test_usernames_are_unique_without_regard_to_case(connect):
    session = await connect()
    await session.register("Bob.Smith", PASSWORD)
    with pytest.raises(ServerError) as info:
        await session.register("bob.SMITH", PASSWORD)
    assert info.value.code == ErrorCode.USERNAME_TAKEN
    assert (await session.login("BOB.smith", PASSWORD)).username == "bob.smith"


async def test_passwords_are_stored_only_as_argon2id(server, user):
    await user("carol")
    row = await server.storage.run(lambda: User.get(User.username == "carol"))
    assert row.password_hash.startswith("$argon2id$v=19$m=19456,t=2,")
    assert PASSWORD not in row.password_hash
    session = await server.storage.run(lambda: AuthSession.select().first())
    assert len(session.token_hash) == 64


async def test_wrong_password_and_unknown_user_look_the_same(connect):
    session = await connect()
    await session.register("dave", PASSWORD)
    errors = []
    for name, password in (("dave", "wrong password"), ("nobody", PASSWORD)):
        with pytest.raises(ServerError) as info:
            await session.login(name, password)
        errors.append((info.value.code, info.value.message))
    assert errors[0] == errors[1]


async def test_login_throttling_backs_off_and_success_resets(server, connect):
    session = await connect()
    await session.register("erin", PASSWORD)
    for _ in range(5):
        with pytest.raises(ServerError) as info:
            await session.login("erin", "wrong password")
        assert info.value.code == ErrorCode.INVALID_CREDENTIALS
    with pytest.raises(ServerError) as info:
        await session.login("erin", PASSWORD)
    assert info.value.code == ErrorCode.LOGIN_THROTTLED
    assert 0 < info.value.retry_after_ms <= 1001
    server.context.clock.advance(info.value.retry_after_ms / 1000)
    with pytest.raises(ServerError) as info:
        await session.login("erin", "wrong password")
    assert info.value.code == ErrorCode.INVALID_CREDENTIALS
    with pytest.raises(ServerError) as info:
        await session.login("erin", PASSWORD)
    assert info.value.code == ErrorCode.LOGIN_THROTTLED
    assert 1000 < info.value.retry_after_ms <= 2001
    server.context.clock.advance(info.value.retry_after_ms / 1000)
    assert (await session.login("erin", PASSWORD)).username == "erin"
    now = server.context.clock.monotonic()
    assert server.accounts.throttle.retry_after("user:erin", now) == 0


async def test_rehash_at_login_when_parameters_change(server, connect):
    session = await connect()
    old = PasswordHasher(opslimit=3, memlimit=8 * 1024 * 1024)
    weak_hash = await old.hash(PASSWORD)
    old.close()

    def create():
        User.create(
            username="frank", password_hash=weak_hash, display_name="f", created_ms=0
        )

    await server.storage.run(create)
    await session.login("frank", PASSWORD)
    row = await server.storage.run(lambda: User.get(User.username == "frank"))
    assert row.password_hash != weak_hash
    assert not server.hasher.needs_rehash(row.password_hash)


async def test_second_login_kicks_the_first(server, user, connect):
    first = await user("gina")
    old_token = first.token
    second = await connect()
    await second.login("gina", PASSWORD)
    kicked = await first.next_event(5)
    assert isinstance(kicked, Kicked) and kicked.reason == "signed_in_elsewhere"
    closed = await first.next_event(5)
    assert isinstance(closed, SessionClosed)
    await eventually(lambda: not first.connected)
    third = await connect()
    with pytest.raises(ServerError) as info:
        await third.resume(old_token)
    assert info.value.code == ErrorCode.INVALID_TOKEN
    assert (await second.get_profile()).username == "gina"


@pytest.mark.stores
async def test_token_resume_and_logout(user, connect):
    alice = await user("hank")
    token = alice.token
    other = await connect(reconnect=False)
    await alice.close()
    assert (await other.resume(token)).username == "hank"
    await other.logout()
    with pytest.raises(ServerError) as info:
        await other.get_profile()
    assert info.value.code == ErrorCode.NOT_AUTHENTICATED
    third = await connect()
    with pytest.raises(ServerError) as info:
        await third.resume(token)
    assert info.value.code == ErrorCode.INVALID_TOKEN


async def test_change_password_ends_other_sessions(server, user, connect):
    alice = await user("iris")
    other_token_holder = await connect()
    await other_token_holder.resume(alice.token)
    await eventually(lambda: not alice.connected)
    fresh = await connect()
    await fresh.login("iris", PASSWORD)
    await eventually(lambda: not other_token_holder.connected)
    with pytest.raises(ServerError) as info:
        await fresh.change_password("wrong password", "new password 1")
    assert info.value.code == ErrorCode.INVALID_CREDENTIALS
    await fresh.change_password(PASSWORD, "new password 1")
    count = await server.storage.run(lambda: AuthSession.select().count())
    assert count == 1
    probe = await connect()
    with pytest.raises(ServerError):
        await probe.login("iris", PASSWORD)
    await probe.login("iris", "new password 1")


async def test_already_logged_in(user):
    alice = await user("jack")
    with pytest.raises(ServerError) as info:
        await alice.login("jack", PASSWORD)
    assert info.value.code == ErrorCode.ALREADY_AUTHENTICATED


async def test_profile_text_is_validated(user):
    alice = await user("kate")
    with pytest.raises(ServerError) as info:
        await alice.update_profile(mood="x" * 141)
    assert info.value.code == ErrorCode.INVALID_MESSAGE
    assert (await alice.update_profile(mood="é" * 140)).mood == "é" * 140
    with pytest.raises(ServerError) as info:
        await alice.update_profile(display_name="bad\x00name")
    assert info.value.code == ErrorCode.INVALID_ARGUMENT
    with pytest.raises(ServerError) as info:
        await alice.update_profile(display_name="   ")
    assert info.value.code == ErrorCode.INVALID_ARGUMENT
    with pytest.raises(ServerError) as info:
        await alice.get_profile("nosuchuser")
    assert info.value.code == ErrorCode.NOT_FOUND


def _image(fmt: str, size=(300, 200), mode="RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 30, 30, 128)[: len(mode)]).save(out, format=fmt)
    return out.getvalue()


async def test_avatar_upload_is_reencoded(user):
    alice = await user("liam")
    bob = await user("mona")
    profile = await alice.set_avatar(_image("JPEG"))
    assert profile.avatar_sha256
    png = await bob.get_avatar("liam")
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        assert max(image.size) == 128
    profile = await alice.set_avatar(_image("PNG", (64, 64), "RGBA"))
    assert profile.avatar_sha256
    profile = await alice.update_profile(avatar_icon=7)
    assert profile.avatar_icon == 7 and profile.avatar_sha256 is None
    with pytest.raises(ServerError) as info:
        await bob.get_avatar("liam")
    assert info.value.code == ErrorCode.NOT_FOUND


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"not an image at all", ErrorCode.INVALID_ARGUMENT),
        (_image("GIF"), ErrorCode.INVALID_ARGUMENT),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, ErrorCode.INVALID_ARGUMENT),
        (b"x" * (256 * 1024 + 1), ErrorCode.TOO_LARGE),
    ],
)
async def test_bad_avatars_are_refused(user, data, code):
    alice = await user("nina")
    with pytest.raises(ServerError) as info:
        await alice.set_avatar(data)
    assert info.value.code == code
    assert (await alice.get_profile()).avatar_sha256 is None


async def test_decompression_bomb_is_refused(user):
    alice = await user("omar")
    bomb = _image("PNG", (5000, 5000), "L")
    assert len(bomb) < 256 * 1024
    with pytest.raises(ServerError) as info:
        await alice.set_avatar(bomb)
    assert info.value.code == ErrorCode.TOO_LARGE


@pytest.mark.stores
async def test_search_is_paged_by_key(user, connect):
    searcher = await user("zed")
    reg = await connect()
    names = [f"pat{i:02d}" for i in range(25)] + ["paul", "peter"]
    for name in names:
        await reg.register(name, PASSWORD)
    seen = []
    after = None
    while True:
        users, after = await searcher.search("pat", after=after, limit=10)
        seen += [u.username for u in users]
        if after is None:
            break
    assert seen == sorted(n for n in names if n.startswith("pat"))
    users, _ = await searcher.search("PA", limit=100)
    assert len(users) == 26
    users, _ = await searcher.search("%", limit=100)
    assert users == []


async def test_requests_before_login_are_refused(server, connect):
    session = await connect()
    for call in (
        session.get_profile(),
        session.search("a"),
        session.update_profile(mood="x"),
        session.get_avatar("a"),
        session.logout(),
        session.set_avatar(b"x"),
    ):
        with pytest.raises(ServerError) as info:
            await call
        assert info.value.code == ErrorCode.NOT_AUTHENTICATED


async def test_session_address_is_pinned(server, user):
    alice = await user("pete")
    key = f"{address(server)}"
    assert alice.pins.get(key) == server.fingerprint
