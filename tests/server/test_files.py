"""File transfer between real clients over real QUIC."""

import asyncio
import os

import pytest

from client import ServerError
from client.transfers import TransferError, Transfers
from client.transfers.streams import DownloadListener
from client.transfers.upload import HASH_STEP
from codec import ErrorCode, encode_message
from codec.messages import DownloadFile, FileDelivered, FileOffered
from tests.conftest import PASSWORD, befriend, next_of, sha256_of
from udpio.held_events import HoldsEvents


def transfers(member, tmp_path):
    return Transfers(
        member.session, member.store, tmp_path / f"downloads-{member.name}"
    )


@pytest.mark.parametrize("size", [0, 1, 1000, 3 * 1024 * 1024 + 7])
async def test_round_trip(member, tmp_path, size):
    a = await member("alice")
    b = await member("bob")
    await befriend(a, b)
    source = tmp_path / "report final.bin"
    source.write_bytes(os.urandom(size))
    sent = await transfers(a, tmp_path).send("bob", source)
    assert sent.state == "done"
    assert sent.instant == (size == 0)  # everyone holds the empty content
    assert sent.wire_bytes == size
    offered = await next_of(b.session, FileOffered)
    assert (offered.file.name, offered.file.size, offered.file.sender) == (
        "report final.bin",
        size,
        "alice",
    )
    coalesced = HoldsEvents.coalesced
    got = await transfers(b, tmp_path).download(offered.file.file_id)
    assert got.state == "done" and got.wire_bytes == size
    assert sha256_of(tmp_path / "downloads-bob" / "report final.bin") == sha256_of(
        source
    )
    if size > 1024 * 1024:
        # the download's packets came in bursts: their data was handed on in
        # runs, not an event a packet (udpio.held_events)
        assert HoldsEvents.coalesced - coalesced > size / 1400 / 10
    delivered = await next_of(a.session, FileDelivered)
    assert delivered.file_id == offered.file.file_id


@pytest.mark.stores
async def test_instant_upload_sends_no_content_bytes(member, tmp_path):
    a = await member("carol")
    b = await member("dave")
    c = await member("erin")
    await befriend(a, b)
    await befriend(c, b)
    source = tmp_path / "video.mp4"
    source.write_bytes(os.urandom(2 * 1024 * 1024))
    first = await transfers(a, tmp_path).send("dave", source)
    assert not first.instant
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(source.read_bytes())
    second = await transfers(c, tmp_path / "c").send("dave", copy)
    assert second.instant and second.wire_bytes == 0 and second.state == "done"


async def test_forged_hash_without_content_gets_nothing(member, tmp_path):
    from codec.messages import FileOffer, FileStored, OfferFile, ProveFile

    a = await member("frank")
    b = await member("gina")
    mallory = await member("mallory")
    await befriend(a, b)
    await befriend(mallory, b)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"top secret " * 1000)
    await transfers(a, tmp_path).send("gina", secret)
    offer = await mallory.session.call(
        OfferFile,
        FileOffer,
        to="gina",
        name="x",
        size=secret.stat().st_size,
        sha256=sha256_of(secret),
    )
    assert offer.offset == 0 and len(offer.ranges) == 4
    stored = await mallory.session.call(
        ProveFile, FileStored, file_id=offer.file_id, proof=b"\x00" * 32
    )
    assert stored.state == "uploading" and not stored.instant
    # A hash the server does not hold gets the same kind of answer.
    unknown = await mallory.session.call(
        OfferFile, FileOffer, to="gina", name="y", size=5, sha256="ab" * 32
    )
    assert len(unknown.ranges) == 4
    stored = await mallory.session.call(
        ProveFile, FileStored, file_id=unknown.file_id, proof=b"\x00" * 32
    )
    assert stored.state == "uploading" and not stored.instant
    files = await transfers(mallory, tmp_path).remote()
    assert all(f.state == "uploading" for f in files if f.sender == "mallory")
    with pytest.raises(TransferError, match="not ready"):
        await transfers(mallory, tmp_path / "m").download(offer.file_id)


async def test_only_friends_and_only_sender_and_recipient(member, tmp_path):
    a = await member("hank")
    b = await member("iris")
    stranger = await member("jack")
    source = tmp_path / "f.txt"
    source.write_text("hello")
    with pytest.raises(ServerError) as info:
        await transfers(a, tmp_path).send("iris", source)
    assert info.value.code == ErrorCode.FORBIDDEN
    await befriend(a, b)
    await transfers(a, tmp_path).send("iris", source)
    offered = await next_of(b.session, FileOffered)
    header = await raw_download(stranger.session, offered.file.file_id)
    assert header.code == ErrorCode.NOT_FOUND
    with pytest.raises(TransferError):
        await transfers(stranger, tmp_path / "s").download(offered.file.file_id)


async def raw_download(session, file_id, offset=0):
    """Ask for a download directly; return the server's first frame."""
    proto = await session.wait_ready(1)
    listener = DownloadListener()
    request = DownloadFile(rid=proto.next_rid(), file_id=file_id, offset=offset)
    proto.open_stream(listener, encode_message(request))
    return await asyncio.wait_for(listener.header, 5)


async def test_pause_and_resume_upload_and_download(member, tmp_path):
    a = await member("kate")
    b = await member("liam")
    await befriend(a, b)
    source = tmp_path / "movie.bin"
    source.write_bytes(os.urandom(24 * 1024 * 1024))
    up = transfers(a, tmp_path)
    paused_at, checked = [], []

    def pause_midway(progress):
        if progress.checking:
            checked.append(progress.done)
        elif not paused_at and progress.done >= 8 * 1024 * 1024:
            paused_at.append(progress.done)
            asyncio.get_running_loop().create_task(up.pause(progress.transfer_id))

    up.on_progress = pause_midway
    first = await up.send("liam", source)
    assert first.state == "paused" and 0 < first.done < first.size
    # The file was hashed first, in steps, reported as checking.
    assert checked == sorted(checked) and checked[-1] == first.size
    assert len(checked) >= 3
    resumed = await up.resume(first.id)
    assert resumed.state == "done"
    assert first.wire_bytes + resumed.wire_bytes < source.stat().st_size + 9 * 2**20
    offered = await next_of(b.session, FileOffered)
    down = transfers(b, tmp_path)
    paused_down = []

    def pause_download(progress):
        if not paused_down and progress.done >= 8 * 1024 * 1024:
            paused_down.append(progress.done)
            asyncio.get_running_loop().create_task(down.pause(progress.transfer_id))

    down.on_progress = pause_download
    got = await down.download(offered.file.file_id)
    assert got.state == "paused"
    part = tmp_path / "downloads-liam" / "movie.bin.part"
    assert part.exists() and 0 < part.stat().st_size < source.stat().st_size
    done = await down.resume(got.id)
    assert done.state == "done"
    assert sha256_of(tmp_path / "downloads-liam" / "movie.bin") == sha256_of(source)
    assert not part.exists()


async def test_a_sent_file_is_listed_at_once_and_a_pause_stops_its_hashing(
    member, tmp_path
):
    a = await member("nina")
    b = await member("omar")
    await befriend(a, b)
    source = tmp_path / "archive.bin"
    source.write_bytes(os.urandom(3 * HASH_STEP))
    up = transfers(a, tmp_path)
    seen = []

    def pause_while_checking(progress):
        seen.append(("progress", progress.checking, progress.done))
        if progress.checking and progress.done == HASH_STEP:
            asyncio.get_running_loop().create_task(up.pause(progress.transfer_id))

    up.on_change = lambda t: seen.append(("change", t.state, t.sha256))
    up.on_progress = pause_while_checking
    paused = await up.send("omar", source)
    # Listed before any of it was hashed; paused while hashing, nothing offered.
    assert seen[0] == ("change", "active", None)
    assert ("progress", True, HASH_STEP) in seen
    assert not any(kind == "progress" and not checking for kind, checking, _ in seen)
    assert (paused.state, paused.sha256, paused.file_id) == ("paused", None, None)
    assert paused.done == 0 and paused.wire_bytes == 0
    # A resume hashes it anew and sends it.
    up.on_progress = lambda progress: None
    done = await up.resume(paused.id)
    assert done.state == "done" and done.sha256 == sha256_of(source)


async def test_a_file_changed_or_gone_before_its_upload_fails_clearly(member, tmp_path):
    a = await member("pia")
    b = await member("quin")
    await befriend(a, b)
    up = transfers(a, tmp_path)

    def pause_while_checking(progress):
        if progress.checking and progress.done == HASH_STEP:
            asyncio.get_running_loop().create_task(up.pause(progress.transfer_id))

    up.on_progress = pause_while_checking
    grown, gone = tmp_path / "grown.bin", tmp_path / "gone.bin"
    paused = []
    for path in (grown, gone):
        path.write_bytes(os.urandom(3 * HASH_STEP))
        paused.append(await up.send("quin", path))
    assert [t.state for t in paused] == ["paused", "paused"]
    with open(grown, "ab") as fh:
        fh.write(b"more")
    gone.unlink()
    with pytest.raises(TransferError, match="changed since the transfer started"):
        await up.resume(paused[0].id)
    with pytest.raises(TransferError, match="cannot read"):
        await up.resume(paused[1].id)
    for transfer in paused:
        failed = await up.get(transfer.id)
        assert (failed.state, failed.file_id) == ("failed", None), failed
        assert failed.error
    # Nothing reached the server: the recipient has no file offered.
    assert await transfers(b, tmp_path).remote() == []


@pytest.mark.stores
async def test_size_limit_quota_and_cancel(server, member, tmp_path):
    a = await member("mona")
    b = await member("nick")
    await befriend(a, b)
    server.config.max_file_size = 1000
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 1001)
    with pytest.raises(ServerError) as info:
        await transfers(a, tmp_path).send("nick", big)
    assert info.value.code == ErrorCode.TOO_LARGE
    server.config.max_file_size = 10**9
    server.config.quota_bytes = 1500
    small = tmp_path / "small.bin"
    small.write_bytes(b"y" * 1000)
    await transfers(a, tmp_path).send("nick", small)
    other = tmp_path / "other.bin"
    other.write_bytes(b"z" * 600)
    with pytest.raises(ServerError) as info:
        await transfers(a, tmp_path).send("nick", other)
    assert info.value.code == ErrorCode.QUOTA_EXCEEDED
    offered = await next_of(b.session, FileOffered)
    down = transfers(b, tmp_path)
    files = await down.remote()
    assert [f.name for f in files] == ["small.bin"]
    from codec.messages import CancelFile, FileCancelled, Reply

    await a.session.call(CancelFile, Reply, file_id=offered.file.file_id)
    cancelled = await next_of(b.session, FileCancelled)
    assert cancelled.by == "mona"
    header = await raw_download(b.session, offered.file.file_id)
    assert header.code == ErrorCode.CONFLICT
    await transfers(a, tmp_path).send("nick", other)  # the quota is free again


async def test_names_are_sanitised(member, tmp_path):
    from codec.messages import FileList as FileListReply
    from codec.messages import FileOffer, ListFiles, OfferFile

    a = await member("olga")
    b = await member("paul")
    await befriend(a, b)
    cases = [
        ("../../etc/passwd", "passwd"),
        ("C:\\Windows\\evil.exe", "evil.exe"),
        ("bad\x00name\x1b[31m.txt", "badname[31m.txt"),
        ("...", "file"),
        (".hidden", "hidden"),
        ("é" * 300 + ".txt", "é" * 125 + ".txt"),
    ]
    for n, (raw, clean) in enumerate(cases):
        offer = await a.session.call(
            OfferFile, FileOffer, to="paul", name=raw, size=1, sha256=f"{n:02x}" * 32
        )
        files = (await a.session.call(ListFiles, FileListReply)).files
        files = [f for f in files if f.file_id == offer.file_id]
        assert files[0].name == clean, raw
        assert (files[0].sender, files[0].recipient) == ("olga", "paul")


async def test_server_disk_full_keeps_what_it_received_and_resumes(tmp_path):
    import subprocess

    from server import ServerApp
    from tests.conftest import close_member, open_member, server_config

    data = tmp_path / "data"
    data.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(data)],
        capture_output=True,
        text=True,
    )
    assert mounted.returncode == 0, f"cannot mount a small tmpfs: {mounted.stderr}"
    app = None
    members = []
    try:
        app = ServerApp(server_config(tmp_path))
        host, port = await app.start()
        address = f"{host}:{port}"
        a = await open_member(address, "quinn", tmp_path / "quinn")
        b = await open_member(address, "rosa", tmp_path / "rosa")
        members += [a, b]
        await befriend(a, b)
        source = tmp_path / "huge.bin"
        source.write_bytes(os.urandom(8 * 1024 * 1024))
        up = transfers(a, tmp_path)
        with pytest.raises(ServerError) as info:
            await up.send("rosa", source)
        assert info.value.code == ErrorCode.STORAGE_FULL
        stuck = (await up.list())[-1]
        assert stuck.state == "failed" and stuck.done > 0
        partials = list((data / "files" / "partial").iterdir())
        held = partials[0].stat().st_size
        assert held > 2 * 1024 * 1024
        subprocess.run(["mount", "-o", "remount,size=24m", str(data)], check=True)
        done = await up.resume(stuck.id)
        assert done.state == "done"
        assert done.wire_bytes <= source.stat().st_size - held + 9 * 2**20
        offered = await next_of(b.session, FileOffered)
        await transfers(b, tmp_path).download(offered.file.file_id)
        assert sha256_of(tmp_path / "downloads-rosa" / "huge.bin") == sha256_of(source)
    finally:
        for m in members:
            await close_member(m)
        if app is not None:
            await app.shutdown(grace=0)
        subprocess.run(["umount", "-l", str(data)], capture_output=True)


async def test_client_disk_full_keeps_the_partial_and_resumes(member, tmp_path):
    import subprocess

    a = await member("sara")
    b = await member("tom")
    await befriend(a, b)
    source = tmp_path / "film.bin"
    source.write_bytes(os.urandom(6 * 1024 * 1024))
    await transfers(a, tmp_path).send("tom", source)
    offered = await next_of(b.session, FileOffered)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(inbox)],
        capture_output=True,
        text=True,
    )
    assert mounted.returncode == 0, f"cannot mount a small tmpfs: {mounted.stderr}"
    try:
        down = transfers(b, tmp_path)
        with pytest.raises(TransferError, match="disk is full"):
            await down.download(offered.file.file_id, inbox)
        stuck = (await down.list())[-1]
        assert stuck.state == "failed"
        part = inbox / "film.bin.part"
        kept = part.stat().st_size
        assert kept > 1024 * 1024
        subprocess.run(["mount", "-o", "remount,size=16m", str(inbox)], check=True)
        done = await down.resume(stuck.id)
        assert done.state == "done"
        assert done.wire_bytes <= source.stat().st_size - kept + 1024 * 1024
        assert sha256_of(inbox / "film.bin") == sha256_of(source)
    finally:
        subprocess.run(["umount", "-l", str(inbox)], capture_output=True)


async def test_several_transfers_at_once(member, tmp_path):
    a = await member("uma")
    b = await member("vic")
    await befriend(a, b)
    manager = transfers(a, tmp_path)
    sources = []
    for n in range(4):
        path = tmp_path / f"part{n}.bin"
        path.write_bytes(os.urandom(3 * 1024 * 1024 + n))
        sources.append(path)
    sent = await asyncio.gather(*(manager.send("vic", p) for p in sources))
    assert [t.state for t in sent] == ["done"] * 4
    down = transfers(b, tmp_path)
    files = await down.remote()
    got = await asyncio.gather(*(down.download(f.file_id) for f in files))
    assert [t.state for t in got] == ["done"] * 4
    for path in sources:
        assert sha256_of(tmp_path / "downloads-vic" / path.name) == sha256_of(path)


async def test_upload_at_the_wrong_offset_is_refused_and_changes_nothing(
    server, member, tmp_path
):
    from client.transfers.streams import UploadListener
    from codec.messages import FileOffer, OfferFile, UploadFile

    a = await member("wade")
    b = await member("xena")
    await befriend(a, b)
    offer = await a.session.call(
        OfferFile, FileOffer, to="xena", name="a.bin", size=100, sha256="ef" * 32
    )
    assert offer.offset == 0
    proto = await a.session.wait_ready(1)
    listener = UploadListener()
    request = UploadFile(rid=proto.next_rid(), file_id=offer.file_id, offset=40)
    stream_id = proto.open_stream(listener, encode_message(request))
    proto.send_stream(stream_id, b"x" * 60, end=True)
    reply = await asyncio.wait_for(listener.final, 5)
    assert reply.code == ErrorCode.CONFLICT
    assert "holds 0 bytes" in reply.message
    assert server.files.blobs.partial_size(offer.file_id) == 0


@pytest.mark.stores
async def test_an_offer_made_while_the_recipient_was_away_reaches_them_at_login(
    server, member, tmp_path
):
    # The offer is pushed when the upload completes; a recipient whose connection
    # was dead at that moment (a network drop) must still hear of it.
    a = await member("alice")
    b = await member("bob")
    await befriend(a, b)
    await b.session.logout()
    first, second = tmp_path / "first.bin", tmp_path / "second.bin"
    first.write_bytes(os.urandom(1000))
    second.write_bytes(os.urandom(2000))
    for source in (first, second):
        assert (await transfers(a, tmp_path).send("bob", source)).state == "done"
    await b.session.login("bob", PASSWORD)
    offers = [await next_of(b.session, FileOffered) for _ in range(2)]
    assert [o.file.name for o in offers] == ["first.bin", "second.bin"]
    got = await transfers(b, tmp_path).download(offers[0].file.file_id)
    assert got.state == "done"

    # What was downloaded is not offered again; what waits still is.
    await b.session.logout()
    await b.session.login("bob", PASSWORD)
    again = await next_of(b.session, FileOffered)
    assert again.file.name == "second.bin"
    with pytest.raises(TimeoutError):
        await next_of(b.session, FileOffered, timeout=0.5)
