"""An upload gives way to its user's meeting (issue 14, item 6), real QUIC on
loopback: a connection changes controller in the middle of an upload without
losing count of what is in flight; an upload pump runs the scavenger
controller while its engine is in a meeting and the media controller
otherwise, told when the meeting begins or ends; the engine's account says
"in a meeting" exactly while its call exists; and in a meeting an upload too
small for a pump otherwise goes through one. How well the pump gives way on a
shared bottleneck: ``tests/client/test_files_beside_meeting.py`` and
``bench/adaptation.py --scenario meeting-and-file``."""

from __future__ import annotations

import asyncio
import logging
import os

from client import Session
from client.engine.backend.account import Account
from client.engine.backend.meeting import VideoSettings
from client.engine.frames import TileFrames
from client.quic_adapter import congestion_control
from client.store import LocalStore
from client.transfers import Transfers
from codec.media.cc import (
    MediaCongestionControl,
    register_media_congestion_control,
    register_scavenger_congestion_control,
)
from netsim import ImpairmentProxy, LinkConfig
from tests.conftest import PASSWORD, address, befriend, eventually, open_member

MiB = 1024 * 1024


def _in_flight(quic) -> int:
    """Bytes of the packets aioquic holds as in flight (its own books)."""
    return sum(
        packet.sent_bytes
        for space in quic._loss.spaces
        for packet in space.sent_packets.values()
        if packet.in_flight
    )


async def test_a_connection_changes_controller_in_the_middle_of_an_upload(
    member, tmp_path
):
    alice, bob = await member("alice"), await member("bob")
    await befriend(alice, bob)
    proto = await alice.session.wait_ready(5)
    scavenger = register_scavenger_congestion_control()
    media = register_media_congestion_control()
    assert proto.congestion_control == media
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(24 * MiB))
    transfers = Transfers(alice.session, alice.store, tmp_path / "dl")
    switches: list[int] = []

    async def switch() -> None:
        # Swap four times, each with packets in flight.
        while len(switches) < 4:
            before = congestion_control(proto.quic).bytes_in_flight
            if before == 0:
                await asyncio.sleep(0.001)
                continue
            proto.use_congestion_control(scavenger if len(switches) % 2 == 0 else media)
            controller = congestion_control(proto.quic)
            assert controller.bytes_in_flight == before == _in_flight(proto.quic)
            switches.append(before)
            await asyncio.sleep(0.05)

    switching = asyncio.ensure_future(switch())
    sent = await transfers.send("bob", path)
    await asyncio.wait_for(switching, 1)
    assert sent.state == "done" and sent.done == 24 * MiB
    assert len(switches) == 4
    assert isinstance(congestion_control(proto.quic), MediaCongestionControl)
    assert proto.congestion_control == media
    # Acknowledgements of packets the old controllers sent were counted down
    # by the new ones: nothing is left in flight once all is acknowledged.
    await eventually(lambda: _in_flight(proto.quic) == 0)
    assert congestion_control(proto.quic).bytes_in_flight == 0
    # The same name again changes nothing.
    controller = congestion_control(proto.quic)
    proto.use_congestion_control(media)
    assert congestion_control(proto.quic) is controller


async def test_an_upload_pump_gives_way_while_its_user_is_in_a_meeting(
    server, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="quicmeet.transfers")
    # 40 Mbit/s: the 32 MiB take about 7 s, time for both changes.
    link = LinkConfig(delay_s=0.005, rate_bps=40_000_000, queue_delay_s=0.1)
    async with ImpairmentProxy(upstream=server.address, up=link, seed=3) as proxy:
        host, port = proxy.listen_address
        alice = await open_member(f"{host}:{port}", "alice", tmp_path / "alice")
        bob = await open_member(address(server), "bob", tmp_path / "bob")
        try:
            await befriend(alice, bob)
            transfers = Transfers(
                alice.session, alice.store, tmp_path / "dl", pump_at=0
            )
            meeting = {"on": True}
            transfers.media_active = lambda: meeting["on"]
            path = tmp_path / "big.bin"
            path.write_bytes(os.urandom(32 * MiB))
            reports: list[int] = []
            transfers.on_progress = lambda p: reports.append(p.done)
            sending = asyncio.ensure_future(transfers.send("bob", path))
            # It starts in the meeting: the pump's connection starts on the
            # scavenger (its order says so) and says nothing about it.
            await eventually(lambda: transfers.pumps and reports, timeout=30)
            assert "upload pump" not in caplog.text
            meeting["on"] = False
            await eventually(lambda: "takes the path" in caplog.text, timeout=10)
            meeting["on"] = True
            await eventually(
                lambda: "gives way to a meeting" in caplog.text, timeout=10
            )
            sent = await asyncio.wait_for(sending, 60)
        finally:
            await alice.session.close()
            alice.store.close()
            await bob.session.close()
            bob.store.close()
    assert sent.state == "done" and sent.done == 32 * MiB
    assert not transfers.pumps


async def test_in_a_meeting_a_smaller_upload_goes_through_a_pump(member, tmp_path):
    alice, bob = await member("alice"), await member("bob")
    await befriend(alice, bob)
    transfers = Transfers(alice.session, alice.store, tmp_path / "dl", pump_at=64 * MiB)
    path = tmp_path / "small.bin"
    path.write_bytes(os.urandom(4 * MiB))
    pumped: set[int] = set()
    transfers.on_progress = lambda p: pumped.update(transfers.pumps.values())
    # Outside a meeting 4 MiB go on the session's connection...
    sent = await transfers.send("bob", path)
    assert sent.state == "done" and not pumped
    # ...in one, through a pump that gives way to the media.
    transfers.media_active = lambda: True
    again = tmp_path / "again.bin"
    again.write_bytes(os.urandom(4 * MiB))
    sent = await transfers.send("bob", again)
    assert sent.state == "done" and pumped


async def test_the_account_is_in_a_meeting_while_its_call_exists(server, tmp_path):
    session = Session(address(server))
    store = LocalStore(tmp_path / "history.db")

    async def ended(*args) -> None:
        pass

    account = Account(
        session, store, lambda event: None, ended, tmp_path / "dl", TileFrames(),
        VideoSettings,
    )  # fmt: skip
    try:
        await session.connect()
        await session.register("alice", PASSWORD)
        await session.login("alice", PASSWORD)
        await account.start()
        media_active = account.files.transfers.media_active
        assert not media_active()
        await account.meeting.create()
        assert media_active()
        await account.meeting.leave()
        await eventually(lambda: not media_active(), timeout=10)
    finally:
        await account.close()  # and its store
        await session.close()


async def test_a_download_comes_on_its_own_connection_which_gives_way_to_a_meeting(
    server, tmp_path
):
    stats = server.context.stats
    # 40 Mbit/s down: the 24 MiB take about 5 s, time to leave the meeting.
    down = LinkConfig(delay_s=0.005, rate_bps=40_000_000, queue_delay_s=0.1)
    async with ImpairmentProxy(upstream=server.address, down=down, seed=4) as proxy:
        host, port = proxy.listen_address
        alice = await open_member(address(server), "alice", tmp_path / "alice")
        bob = await open_member(f"{host}:{port}", "bob", tmp_path / "bob")
        try:
            await befriend(alice, bob)
            for name, size in (("small.bin", MiB // 2), ("big.bin", 24 * MiB)):
                (tmp_path / name).write_bytes(os.urandom(size))
                await Transfers(alice.session, alice.store, tmp_path / "a").send(
                    "bob", tmp_path / name
                )
            files = {
                f.name: f
                for f in await Transfers(bob.session, bob.store, tmp_path).remote()
            }
            transfers = Transfers(bob.session, bob.store, tmp_path / "dl", link_at=MiB)
            attached = stats["transfer_connections"]
            # Under link_at: on the session's connection.
            got = await transfers.download(files["small.bin"].file_id)
            assert got.state == "done"
            assert stats["transfer_connections"] == attached
            # In a meeting, a large one comes on a transfer connection whose
            # server side gives way; it takes the path back when bob leaves.
            await bob.session.rooms.create()
            receiving = asyncio.ensure_future(
                transfers.download(files["big.bin"].file_id)
            )
            await eventually(lambda: stats["downloads_given_way"] == 1, timeout=20)
            assert stats["transfer_connections"] == attached + 1
            await bob.session.rooms.leave()
            await eventually(lambda: stats["downloads_full_path"] == 1, timeout=10)
            got = await asyncio.wait_for(receiving, 60)
        finally:
            for member in (alice, bob):
                await member.session.close()
                member.store.close()
    assert got.state == "done" and got.done == 24 * MiB
    assert (tmp_path / "dl" / "big.bin").read_bytes() == (
        tmp_path / "big.bin"
    ).read_bytes()
    assert stats["downloads_given_way"] == 1 and stats["downloads_full_path"] == 1
