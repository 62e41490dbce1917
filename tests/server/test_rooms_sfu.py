"""The SFU over real QUIC: who receives a room's datagrams, and who does not."""

from __future__ import annotations

import asyncio

from codec.media import (
    FeedbackPacket,
    KeyframeRequest,
    PacketKind,
    VideoPacket,
    parse_packet,
)
from codec.media.packet import rewrite_transport_seq
from tests.conftest import eventually

_FEEDBACK_FIRST_BYTE = 0x40 | (PacketKind.FEEDBACK << 3)
_RATE_LIMIT_FIRST_BYTE = 0x40 | (PacketKind.RATE_LIMIT << 3)


def video(track_id: int, seq: int, payload: bytes = b"\x00\x00\x01\x65frame") -> bytes:
    return VideoPacket(
        track_id=track_id,
        seq=seq,
        transport_seq=0xBEEF,
        timestamp=90_000 + seq,
        frame_number=seq,
        fragment_index=0,
        fragment_count=1,
        keyframe=True,
        layer=0,
        payload=payload,
    ).serialize()


def _media_only(inbox: list, feedback: list):
    """A datagram handler that keeps the SFU's per-hop feedback apart and
    leaves out its rate limits (sent to every publisher from the start: the
    tests of limits are in test_rooms_forwarding)."""

    def handle(data: bytes) -> None:
        if data[0] == _FEEDBACK_FIRST_BYTE:
            feedback.append(data)
        elif data[0] != _RATE_LIMIT_FIRST_BYTE:
            inbox.append(data)

    return handle


async def meeting(user, names, feedback=None):
    sessions = [await user(name) for name in names]
    inboxes = {}
    for session in sessions:
        inboxes[session.profile.username] = inbox = []
        kept = ({} if feedback is None else feedback).setdefault(
            session.profile.username, []
        )
        session.rooms.datagram_handler = _media_only(inbox, kept)
    room_id = (await sessions[0].rooms.create()).room_id
    for session in sessions[1:]:
        await session.rooms.join(room_id)
    return sessions, inboxes


async def test_media_reaches_the_other_members_only(server, user):
    (alice, bob, carol), inboxes = await meeting(user, ["alice", "bob", "carol"])
    outsider = await user("outsider")
    inboxes["outsider"] = []
    outsider.rooms.datagram_handler = inboxes["outsider"].append
    track = await alice.rooms.publish("camera", 320, 240, 15)
    sent = [video(track.track_id, seq) for seq in range(20)]
    assert alice.rooms.send_datagrams(sent, max_queued=100)

    await eventually(lambda: len(inboxes["bob"]) == 20 and len(inboxes["carol"]) == 20)
    for name in ("bob", "carol"):
        got = sorted(inboxes[name], key=lambda d: parse_packet(d).seq)
        # Only the per-hop transport sequence changed: 0, 1, 2... per subscriber.
        assert [d[:2] + d[4:] for d in got] == [d[:2] + d[4:] for d in sent]
        assert sorted(parse_packet(d).transport_seq for d in got) == list(range(20))
    await asyncio.sleep(0.2)
    assert inboxes["alice"] == [] and inboxes["outsider"] == []
    stats = server.snapshot()
    assert stats["sfu_forwarded"] == 40 and stats["sfu_received"] == 20

    # A non-member's datagrams, even with a real track id, reach nobody.
    assert outsider.rooms.send_datagrams([video(track.track_id, 99)], 100)
    # A member's datagram with a track id it does not own is dropped too.
    assert bob.rooms.send_datagrams([video(track.track_id, 100)], 100)
    await eventually(lambda: server.snapshot()["sfu_received"] == 22)
    await asyncio.sleep(0.2)
    stats = server.snapshot()
    assert stats["sfu_dropped_not_member"] == 1
    assert stats["sfu_dropped_foreign_track"] == 1
    assert stats["sfu_forwarded"] == 40
    assert sum(len(inbox) for inbox in inboxes.values()) == 40

    # After bob leaves, alice's media goes to carol alone.
    await bob.rooms.leave()
    assert alice.rooms.send_datagrams([video(track.track_id, 20)], 100)
    await eventually(lambda: len(inboxes["carol"]) == 21)
    await asyncio.sleep(0.2)
    assert len(inboxes["bob"]) == 20


async def test_the_sfu_reports_what_each_member_sent_it(server, user):
    feedback: dict[str, list[bytes]] = {}
    (alice, bob), inboxes = await meeting(user, ["alice", "bob"], feedback)
    track = await alice.rooms.publish("camera", 320, 240, 15)
    for burst in range(4):
        datagrams = []
        for index in range(5):
            data = bytearray(video(track.track_id, burst * 5 + index))
            rewrite_transport_seq(data, 100 + burst * 5 + index)
            if (burst, index) != (1, 2):  # never sent: reported missing
                datagrams.append(bytes(data))
        assert alice.rooms.send_datagrams(datagrams, max_queued=100)
        await asyncio.sleep(0.07)

    def reported() -> dict[int, bool]:
        seen = {}
        for data in feedback["alice"]:
            packet = parse_packet(data)
            assert isinstance(packet, FeedbackPacket)
            for offset, arrival in enumerate(packet.arrivals):
                seen[(packet.base_seq + offset) & 0xFFFF] = arrival is not None
        return seen

    await eventually(lambda: len(reported()) >= 15)
    seen = reported()
    assert seen[107] is False
    assert all(seen[seq] for seq in seen if seq != 107)
    assert min(seen) == 100
    assert feedback["bob"] == []  # bob sent nothing: nothing to report
    assert server.snapshot()["sfu_feedback_sent"] == len(feedback["alice"])


async def test_keyframe_requests_go_to_the_publisher_coalesced(server, user):
    (alice, bob, carol), inboxes = await meeting(user, ["alice", "bob", "carol"])
    track = await alice.rooms.publish("camera", 320, 240, 15)
    request = KeyframeRequest(track.track_id, 0).serialize()
    assert bob.rooms.send_datagrams([request], 10)
    assert carol.rooms.send_datagrams([request], 10)
    await eventually(lambda: server.snapshot()["sfu_received"] == 2)
    await asyncio.sleep(0.2)
    assert inboxes["alice"] == [request]
    assert inboxes["bob"] == [] and inboxes["carol"] == []
    stats = server.snapshot()
    assert stats["sfu_keyframe_requests_forwarded"] == 1
    assert stats["sfu_keyframe_requests_coalesced"] == 1

    await asyncio.sleep(0.35)  # no keyframe came: the request has lapsed
    assert carol.rooms.send_datagrams([request], 10)
    await eventually(lambda: len(inboxes["alice"]) == 2)
    # Asking for one's own track, or a track of another room, is refused.
    other = await user("other")
    await other.rooms.create()
    other_track = await other.rooms.publish("camera", 320, 240, 15)
    assert alice.rooms.send_datagrams([request], 10)
    assert bob.rooms.send_datagrams(
        [KeyframeRequest(other_track.track_id, 0).serialize()], 10
    )
    await eventually(lambda: server.snapshot()["sfu_keyframe_requests_refused"] == 2)


async def test_a_meetings_packets_leave_on_the_short_datagram_path(server, user):
    """Every member publishes and receives, so the node owes each one ACKs
    and is acknowledged by each between bursts: its packets are still built
    by the short paths (:mod:`server.quic_fastpath`), hardly any by aioquic's
    general builder (before, that built every packet of this meeting that
    carried media)."""
    names = ["alice", "bob", "carol"]
    sessions, inboxes = await meeting(user, names)
    tracks = [await s.rooms.publish("camera", 320, 240, 15) for s in sessions]
    before = server.snapshot()
    bursts = 30
    for burst in range(bursts):
        for session, track in zip(sessions, tracks, strict=True):
            datagrams = [video(track.track_id, burst * 2 + i) for i in range(2)]
            assert session.rooms.send_datagrams(datagrams, max_queued=100)
        await asyncio.sleep(0.01)
    expected = bursts * 2 * (len(names) - 1)
    await eventually(lambda: all(len(inboxes[n]) == expected for n in names))
    after = server.snapshot()
    forwarded = after["sfu_forwarded"] - before["sfu_forwarded"]
    assert forwarded == expected * len(names)

    def delta(name: str) -> int:
        return after[name] - before[name]

    sent = delta("udp_datagrams_sent")
    # The rest: ACK-only packets (for a member's media when nothing is
    # forwarded to it just then) and the odd packet of a stream.
    short_paths = ("short_datagram_packets", "short_acks_sent", "short_stream_packets")
    general = sent - sum(delta(name) for name in short_paths)
    assert delta("short_datagram_packets") > 0
    assert general < sent * 0.2, (general, sent)
