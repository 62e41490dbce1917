"""Audio loss reports over real QUIC: relayed to the microphone track's
publisher alone; a report about anything else is refused and loses nothing."""

from __future__ import annotations

import pytest

from codec.errors import ErrorCode
from codec.messages import AudioLossReported, Ok, ReportAudioLoss
from tests.conftest import eventually
from tests.server.test_rooms import Recorder, expect_error


async def test_a_loss_report_reaches_the_microphones_publisher_only(server, user):
    alice, bob, carol, dave = [await user(n) for n in ("alice", "bob", "carol", "dave")]
    room = await alice.rooms.create()
    await bob.rooms.join(room.room_id)
    await carol.rooms.join(room.room_id)
    seen = {name: Recorder(s) for name, s in (("alice", alice), ("carol", carol))}
    mic = await alice.rooms.publish("microphone")
    camera = await alice.rooms.publish("camera", 640, 480, 30)

    await bob.rooms.report_audio_loss(mic.track_id, 0.125)
    await eventually(lambda: seen["alice"].of(AudioLossReported))
    (report,) = seen["alice"].of(AudioLossReported)
    assert (report.room_id, report.track_id) == (room.room_id, mic.track_id)
    assert (report.by, report.lost_fraction) == ("bob", 0.125)
    assert seen["carol"].of(AudioLossReported) == []

    # Not a microphone, not a track, one's own, not in the room: refused.
    for session, track_id, code in (
        (bob, camera.track_id, ErrorCode.NOT_FOUND),
        (bob, 999_999, ErrorCode.NOT_FOUND),
        (alice, mic.track_id, ErrorCode.INVALID_ARGUMENT),
        (dave, mic.track_id, ErrorCode.NOT_FOUND),
    ):
        await expect_error(code, session.rooms.report_audio_loss(track_id, 0.5))
    # The connection survives and the next good report goes through.
    await carol.rooms.report_audio_loss(mic.track_id, 0.0)
    await eventually(lambda: len(seen["alice"].of(AudioLossReported)) == 2)
    assert seen["alice"].of(AudioLossReported)[1].by == "carol"


@pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan")])
async def test_a_loss_outside_zero_to_one_is_refused(server, user, fraction):
    alice, bob = await user("alice"), await user("bob")
    room = await alice.rooms.create()
    await bob.rooms.join(room.room_id)
    mic = await alice.rooms.publish("microphone")
    seen = Recorder(alice)
    error = await expect_error(
        ErrorCode.INVALID_MESSAGE,
        bob.call(ReportAudioLoss, Ok, track_id=mic.track_id, lost_fraction=fraction),
    )
    assert "lost_fraction" in error.message
    await bob.rooms.report_audio_loss(mic.track_id, 0.25)
    await eventually(lambda: seen.of(AudioLossReported))
    assert [r.lost_fraction for r in seen.of(AudioLossReported)] == [0.25]
