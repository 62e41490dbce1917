"""FEC following loss, end to end over real QUIC on loopback: listeners
report what they lose of the talker's audio, the server relays it, and the
talker's encoder sizes its in-band FEC (and bitrate) from the worst one."""

from __future__ import annotations

from pathlib import Path

from client.media import ToneSource, WavSink
from netsim import ImpairmentProxy, LinkConfig
from tests.audio.test_meeting_audio import join
from tests.conftest import address, eventually


def sent(call) -> dict:
    return call.stats()["audio_sent"]


async def test_a_lossy_listener_raises_the_talkers_expected_loss(
    server, tmp_path: Path
):
    talker_session, talker = await join(address(server), "talker", None)
    room = talker_session.rooms.room_id
    clean_session, clean = await join(
        address(server), "clean", room, audio_sink=WavSink(tmp_path / "clean.wav")
    )
    members = [(talker_session, talker), (clean_session, clean)]
    lossy = LinkConfig(loss=0.2)
    try:
        async with ImpairmentProxy(
            upstream=server.address, down=lossy, seed=4
        ) as proxy:
            await talker.audio.publish(ToneSource())
            start = sent(talker)
            assert (start["expected_loss_pct"], start["bitrate_bps"]) == (10, 32_000)
            # A clean listener's reports take FEC down from the start value
            # (towards the 1 % floor; on a busy machine late packets count
            # as lost too, and the policy comes down slowly).
            await eventually(lambda: sent(talker)["expected_loss_pct"] <= 5, 20.0)

            host, port = proxy.listen_address
            lossy_sink = WavSink(tmp_path / "lossy.wav")
            members.append(
                await join(f"{host}:{port}", "lossy", room, audio_sink=lossy_sink)
            )
            # One listener losing a fifth of the packets: the worst counts.
            await eventually(lambda: sent(talker)["expected_loss_pct"] >= 12, 30.0)
            assert sent(talker)["bitrate_bps"] >= 44_000
            assert "lossy" in talker.audio.loss.policy.listeners
            lossy_call = members[2][1]
            # Its own count rises when the server's reply comes, which may
            # be after the talker got the relayed report.
            await eventually(
                lambda: lossy_call.audio.stats()["audio_loss_reports_sent"] >= 1
            )
            lossy_heard = lossy_call.audio.stats()
            (track,) = lossy_heard["audio_received"]
            assert track["packets_lost"] > 0
    finally:
        for session, call in members:
            await call.close()
            await session.close()
