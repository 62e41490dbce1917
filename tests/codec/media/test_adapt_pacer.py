"""The pacer, on a virtual clock: rate, priorities, deadlines, numbering."""

from __future__ import annotations

import pytest

from codec.media import AudioPacket, ProbePacket, VideoPacketizer, parse_packet
from codec.media.adapt import (
    MAX_CORRECTION,
    EncoderCorrection,
    Pacer,
    ProbeCluster,
    QualityLadder,
    encoder_target_bps,
)
from codec.media.adapt.repair_share import MAX_REPAIR_SHARE, RepairShare


def _audio(seq: int) -> bytes:
    return AudioPacket(
        track_id=1,
        seq=seq,
        transport_seq=0,
        timestamp=0,
        level=127,
        voice_activity=False,
        payload=b"x" * 80,
    ).serialize()


def _frame(
    packetizer: VideoPacketizer, size: int, keyframe: bool = False
) -> list[bytes]:
    return [p.serialize() for p in packetizer.packetize(bytes(size), 0, keyframe)]


def _drain(
    pacer: Pacer, start: float, end: float, step: float = 0.001
) -> list[tuple[float, bytes]]:
    out = []
    now = start
    while now < end:
        out += [(now, r.data) for r in pacer.release(now)]
        now = round(now + step, 6)
    return out


def test_releases_at_the_pacing_rate_with_a_small_burst() -> None:
    pacer = Pacer(400_000, pacing_factor=1.0, max_video_delay_s=10.0)
    packetizer = VideoPacketizer(9)
    for index in range(10):
        assert pacer.enqueue_frame(
            9, _frame(packetizer, 5_000), 0.0, keyframe=not index
        )
    sent = _drain(pacer, 0.0, 0.5)
    bits = sum(len(data) * 8 for _, data in sent)
    # 0.5 s at 400 kbit/s is 200 kbit, plus the burst allowance of two
    # packets and the one datagram a release may owe.
    assert 180_000 <= bits <= 200_000 + 3 * 1200 * 8
    first_burst = [data for t, data in sent if t == 0.0]
    assert 1 <= len(first_burst) <= 3


def test_audio_then_retransmissions_in_time_then_video() -> None:
    pacer = Pacer(100_000)
    packetizer = VideoPacketizer(9)
    pacer.enqueue_frame(9, _frame(packetizer, 3_000), 0.0, keyframe=True)
    pacer.enqueue_retransmission(
        b"\x48\x00\x00\x00late" + bytes(200), 0.0, deadline=0.01
    )
    pacer.enqueue_retransmission(
        b"\x48\x00\x00\x00good" + bytes(200), 0.0, deadline=5.0
    )
    pacer.enqueue_audio(_audio(1), 0.0)
    sent = [data for _, data in _drain(pacer, 0.02, 1.0)]
    kinds = [parse_packet(d).__class__.__name__ for d in sent[:1]]
    assert kinds == ["AudioPacket"]
    assert sent[1][4:8] == b"good"
    assert all(b"late" not in d[:10] for d in sent)
    assert pacer.stats.retransmissions_expired == 1
    assert len(sent) == 2 + 3


def test_a_released_retransmission_is_marked_as_a_repair() -> None:
    # The hop keeps first sendings in its retransmit cache; keeping a repair
    # again would reset the packet's retransmission count and its copy window,
    # so a NACK's copy would be answered twice more.
    pacer = Pacer(1_000_000)
    packetizer = VideoPacketizer(9)
    frame = _frame(packetizer, 1_000)
    pacer.enqueue_frame(9, frame, 0.0)
    pacer.enqueue_retransmission(frame[0], 0.0, deadline=1.0)
    released = pacer.release(0.0)
    assert [r.repair for r in released] == [True, False]


def test_transport_sequence_numbers_are_assigned_at_release_in_order() -> None:
    pacer = Pacer(1_000_000)
    packetizer = VideoPacketizer(9)
    pacer.enqueue_frame(9, _frame(packetizer, 2_500), 0.0, keyframe=True)
    pacer.enqueue_audio(_audio(1), 0.001)
    released = []
    now = 0.0
    while len(released) < 4:
        released += pacer.release(now)
        now += 0.001
    assert [r.seq for r in released] == [0, 1, 2, 3]
    assert [parse_packet(r.data).transport_seq for r in released] == [0, 1, 2, 3]  # type: ignore[union-attr]


def test_a_frame_that_would_leave_too_late_is_dropped_whole() -> None:
    pacer = Pacer(200_000, pacing_factor=1.0, max_video_delay_s=0.2)
    packetizer = VideoPacketizer(9)
    assert pacer.enqueue_frame(9, _frame(packetizer, 4_000), 0.0, keyframe=True)
    # 4 KB at 200 kbit/s is 160 ms (less the 2.4 KB burst allowance); another
    # 6 KB would leave after about 300 ms.
    assert not pacer.enqueue_frame(9, _frame(packetizer, 6_000), 0.0)
    # A keyframe is never refused: dropping it would only ask for the next.
    assert pacer.enqueue_frame(9, _frame(packetizer, 2_000, True), 0.0, keyframe=True)
    assert pacer.stats.frames_dropped == 1
    assert 0.1 < pacer.delay_s(0.0) < 0.2


def test_a_queued_frame_is_dropped_whole_when_the_rate_falls() -> None:
    pacer = Pacer(1_000_000, pacing_factor=1.0, max_video_delay_s=0.2)
    packetizer = VideoPacketizer(9)
    pacer.enqueue_frame(9, _frame(packetizer, 6_000), 0.0, keyframe=True)
    pacer.enqueue_frame(9, _frame(packetizer, 6_000), 0.0)
    pacer.set_rate(50_000, 0.0)
    sent = _drain(pacer, 0.0, 2.0)
    frames = {parse_packet(d).frame_number for _, d in sent}  # type: ignore[union-attr]
    assert frames == {0}
    assert pacer.take_dropped_tracks() == [9]
    assert pacer.take_dropped_tracks() == []


def test_probe_clusters_go_out_at_their_rate_one_after_the_other() -> None:
    pacer = Pacer(100_000)
    pacer.add_probe(ProbeCluster(1, 800_000, 5), 0.0)
    pacer.add_probe(ProbeCluster(2, 1_600_000, 5), 0.0)
    sent = _drain(pacer, 0.0, 0.2, step=0.0005)
    probes = [(t, parse_packet(d)) for t, d in sent]
    assert all(isinstance(p, ProbePacket) for _, p in probes)
    assert [p.cluster_id for _, p in probes] == [1] * 5 + [2] * 5  # type: ignore[union-attr]
    first = [t for t, p in probes if p.cluster_id == 1]  # type: ignore[union-attr]
    second = [t for t, p in probes if p.cluster_id == 2]  # type: ignore[union-attr]
    assert first[-1] - first[0] == pytest.approx(4 * 1000 * 8 / 800_000, abs=0.001)
    assert second[-1] - second[0] == pytest.approx(4 * 1000 * 8 / 1_600_000, abs=0.001)
    assert second[0] >= first[-1]
    assert all(len(d) == 1000 for _, d in sent)


def test_release_limit_and_next_release_time() -> None:
    pacer = Pacer(100_000, pacing_factor=1.0)
    assert pacer.next_release_at(0.0) is None
    for seq in range(4):
        pacer.enqueue_audio(_audio(seq), 0.0)
    assert len(pacer.release(0.0, limit=1)) == 1
    rest = pacer.release(0.0)
    assert 1 <= len(rest) <= 3
    when = pacer.next_release_at(0.0)
    if len(rest) < 3:
        assert when is not None and when > 0.0


def test_a_rate_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        Pacer(0)
    pacer = Pacer(100_000)
    with pytest.raises(ValueError, match="positive"):
        pacer.set_rate(-1, 0.0)


def test_the_ladder_lowers_bitrate_then_frame_rate_then_resolution() -> None:
    ladder = QualityLadder(640, 480, 30)
    full = ladder.update(500_000, 0.0)
    assert (full.width, full.height, full.fps, full.bitrate_bps) == (
        640,
        480,
        30,
        500_000,
    )
    assert ladder.update(300_000, 1.0).rung == 0  # bitrate alone
    half_rate = ladder.update(200_000, 2.0)
    assert (half_rate.width, half_rate.fps) == (640, 15)
    small = ladder.update(80_000, 3.0)
    assert (small.width, small.height, small.fps) == (320, 240, 15)
    # Back up only after a while, and only with a margin.
    assert ladder.update(1_000_000, 4.0).rung == small.rung
    assert ladder.update(1_000_000, 9.0).rung == 0
    assert ladder.update(240_000, 20.0).rung == 0
    assert ladder.steps == 3


def test_the_encoder_is_asked_for_more_when_it_undershoots() -> None:
    correction = EncoderCorrection()
    now = 0.0
    for _ in range(90):  # three seconds at 30 fps, making 80% of the target
        asked = 10_000 * correction.factor
        correction.on_frame(now, int(0.8 * asked), asked, keyframe=False)
        now += 1 / 30
    assert correction.factor == pytest.approx(1.25, rel=0.02)
    # Keyframes overshoot by design and are not counted.
    assert correction.on_frame(now, 200_000, 10_000, keyframe=True) == pytest.approx(
        1.25, rel=0.02
    )
    for _ in range(90):  # never beyond the bounds
        correction.on_frame(now, 1, 10_000, keyframe=False)
        now += 1 / 30
    assert correction.factor == 1.3


def test_a_cut_drops_a_correction_learnt_at_the_higher_rate() -> None:
    correction = EncoderCorrection()
    correction.on_budget(2_200_000)
    now = 0.0
    for _ in range(90):  # making 80% of its target at 2.2 Mbit/s
        asked = 2_200_000 / 30 * correction.factor
        correction.on_frame(now, int(0.8 * asked), asked, keyframe=False)
        now += 1 / 30
    assert correction.factor == pytest.approx(1.25, rel=0.02)
    # AIMD's sawtooth (0.85) keeps what was learnt; a drop measures it again.
    assert correction.on_budget(1_870_000) == pytest.approx(1.25, rel=0.02)
    assert correction.on_budget(418_000) == 1.0
    for _ in range(15):  # half a second: too soon to measure again
        correction.on_frame(now, 14_000, 418_000 / 30, keyframe=False)
        now += 1 / 30
    assert correction.factor == 1.0


def _made_by_an_encoder_that_undershoots(budget_bps: float, ceiling: float) -> float:
    """Three seconds at 30 fps of an encoder that makes 80% of what it is
    asked (at most its VBV rate, opened at ``MAX_CORRECTION`` x the
    ceiling), asked through the correction; what it makes at the end."""
    correction = EncoderCorrection()
    now, made = 0.0, 0.0
    for _ in range(90):
        asked = min(
            encoder_target_bps(budget_bps, 30, 30, correction.factor, ceiling),
            MAX_CORRECTION * ceiling,
        )
        made = 0.8 * asked
        correction.on_frame(now, int(made / 30), asked / 30, keyframe=False)
        now += 1 / 30
    return made


def test_the_ceiling_bounds_what_the_encoder_makes_not_what_it_is_asked() -> None:
    # A 640x480 stream's ceiling is 2 Mbit/s; x264 made 80% of what it was
    # asked, and the ceiling, applied to the request, left it at 1.6 Mbit/s
    # on a 2.5 Mbit/s path.
    assert _made_by_an_encoder_that_undershoots(2_500_000, 2_000_000) == (
        pytest.approx(2_000_000, rel=0.03)
    )
    # Under the ceiling the budget is what it makes, as before.
    assert _made_by_an_encoder_that_undershoots(1_000_000, 2_000_000) == (
        pytest.approx(1_000_000, rel=0.03)
    )
    # A halved frame rate asks for twice the bits per frame, within the ceiling.
    assert encoder_target_bps(200_000, 30, 15, 1.0, 2_000_000) == 400_000
    assert encoder_target_bps(1_500_000, 30, 15, 1.2, 2_000_000) == 2_400_000


def test_the_repairs_share_of_what_left_is_measured_over_a_window() -> None:
    # The encoders get the estimate less what the repairs took: at 5% loss,
    # each repair sent twice, about a tenth.
    share = RepairShare(window_s=2.0)
    assert share.share(0.0) == 0.0
    for i in range(200):
        share.on_released(1200, i % 10 == 0, i * 0.01)
    assert abs(share.share(2.0) - 0.1) < 0.01
    for i in range(200, 400):
        share.on_released(1200, False, i * 0.01)
    assert share.share(4.0) == 0.0  # the repairs left the window
    for i in range(400, 600):
        share.on_released(1200, True, i * 0.01)
    assert share.share(6.0) == MAX_REPAIR_SHARE
