"""Audio's pure cores on a virtual clock: Opus, levels, VAD/DTX, the active
speaker, the mixer's limiter, and the jitter buffer behind netsim's jitter and
loss."""

from __future__ import annotations

import numpy as np
import pytest

from codec.media.audio import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    SILENT_LEVEL,
    ActiveSpeaker,
    ActiveSpeakerChanged,
    DtxGate,
    JitterBuffer,
    Mixer,
    OpusDecoder,
    OpusEncoder,
    PlayoutKind,
    VoiceDetector,
    audio_level,
)
from netsim import Link, LinkConfig

FRAME_S = FRAME_SAMPLES / SAMPLE_RATE


def voiced(seconds: float, seed: int = 1) -> np.ndarray:
    """A speech-like test signal: a 150 Hz buzz with formant-ish harmonics,
    syllables of about 200 ms, a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    buzz = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 2.5 * t) ** 2
    signal = 6000 * buzz * envelope + rng.normal(0, 100, t.size)
    return signal.astype(np.int16)


def frames_of(signal: np.ndarray) -> list[np.ndarray]:
    return [
        signal[i : i + FRAME_SAMPLES]
        for i in range(0, signal.size - FRAME_SAMPLES + 1, FRAME_SAMPLES)
    ]


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    n = min(a.size, b.size)
    return float(np.corrcoef(a[:n].astype(float), b[:n].astype(float))[0, 1])


# -- Opus ------------------------------------------------------------------------


def test_opus_round_trip_and_live_bitrate():
    signal = voiced(1.0)
    encoder, decoder = OpusEncoder(), OpusDecoder()
    assert encoder.bitrate_bps == 32_000
    packets = [encoder.encode(f) for f in frames_of(signal)]
    # Constant-ish 32 kbit/s: about 80 bytes per 20 ms packet.
    assert 50 <= np.mean([len(p) for p in packets[5:]]) <= 110
    encoder.set_bitrate(12_000)
    assert encoder.bitrate_bps == 12_000
    low = [encoder.encode(f) for f in frames_of(signal)]
    assert np.mean([len(p) for p in low[5:]]) < 0.6 * np.mean(
        [len(p) for p in packets[5:]]
    )
    decoded = np.concatenate([decoder.decode(p) for p in packets])
    # libopus delays by its 6.5 ms look-ahead (312 samples).
    assert correlation(decoded[312:], signal) > 0.7


def gliding(seconds: float, seed: int = 2) -> np.ndarray:
    """A tone whose pitch jumps every 20 ms: what concealment cannot guess."""
    rng = np.random.default_rng(seed)
    pitches = np.repeat(rng.uniform(200, 900, int(seconds * 50)), FRAME_SAMPLES)
    phase = np.cumsum(2 * np.pi * pitches / SAMPLE_RATE)
    return (np.sin(phase) * 8000).astype(np.int16)


def test_opus_fec_recovers_lost_frames_better_than_concealment():
    signal = gliding(2.0)
    encoder = OpusEncoder(expected_loss_pct=20)
    packets = [encoder.encode(f) for f in frames_of(signal)]
    recovered, concealed = [], []
    for lost in range(20, 90, 10):
        fec, plc = OpusDecoder(), OpusDecoder()
        for packet in packets[:lost]:
            fec.decode(packet)
            plc.decode(packet)
        start = lost * FRAME_SAMPLES - 312
        reference = signal[start : start + FRAME_SAMPLES]
        recovered.append(correlation(fec.decode_fec(packets[lost + 1]), reference))
        concealed.append(correlation(plc.conceal(), reference))
    assert np.mean(recovered) > 0.5
    assert np.mean(recovered) > np.mean(concealed) + 0.2


def test_opus_rejects_bad_input():
    encoder, decoder = OpusEncoder(), OpusDecoder()
    with pytest.raises(ValueError, match="960 int16"):
        encoder.encode(np.zeros(480, dtype=np.int16))
    with pytest.raises(ValueError, match="bitrate"):
        encoder.set_bitrate(1_000_000)
    from codec.media.audio import AudioCodecError

    with pytest.raises(AudioCodecError, match="decode failed"):
        decoder.decode(b"\xff\xff\xff")
    encoder.close()
    with pytest.raises(AudioCodecError, match="closed"):
        encoder.encode(np.zeros(FRAME_SAMPLES, dtype=np.int16))


# -- levels, VAD, DTX, active speaker ------------------------------------------------


def test_rfc6464_levels():
    assert audio_level(np.zeros(FRAME_SAMPLES, dtype=np.int16)) == SILENT_LEVEL
    full = np.full(FRAME_SAMPLES, -32768, dtype=np.int16)
    assert audio_level(full) == 0
    t = np.arange(FRAME_SAMPLES) / SAMPLE_RATE
    sine = (np.sin(2 * np.pi * 1000 * t) * 32767 * 0.1).astype(np.int16)
    assert audio_level(sine) == 23  # -20 dB peak, -3 dB for a sine's RMS
    assert audio_level(np.ones(FRAME_SAMPLES, dtype=np.int16)) == 90


def test_vad_and_dtx_send_nothing_in_silence_but_keepalives():
    detector, gate = VoiceDetector(), DtxGate(hangover_s=0.2, keepalive_s=1.0)
    speech = frames_of(voiced(2.0))
    silence = [np.zeros(FRAME_SAMPLES, dtype=np.int16)] * 100
    sent = {"speech": 0, "silence": 0, "keepalive": 0}
    now = 0.0
    for part, frames in (("speech", speech), ("silence", silence)):
        for frame in frames:
            decision = gate.decide(detector.is_speech(frame), now)
            now += FRAME_S
            sent[part] += decision.send
            sent["keepalive"] += decision.keepalive
    assert sent["speech"] >= 0.9 * len(speech)
    # 2 s of silence: the hangover, then one keep-alive a second.
    # The VAD's own hangover adds a few frames to ours.
    assert sent["silence"] <= 20
    assert sent["keepalive"] in (1, 2)
    with pytest.raises(ValueError):
        VoiceDetector(4)


def test_dtx_sends_the_frames_held_back_before_a_talk_spurt_first():
    # A hangover of two frames' time: one frame after the last speech.
    gate = DtxGate(hangover_s=0.04, keepalive_s=1.0, preroll_frames=2)
    now = 0.0

    def decide(speech: bool) -> tuple[bool, int]:
        nonlocal now
        decision = gate.decide(speech, now)
        now += FRAME_S
        return decision.send, decision.preroll

    assert decide(False) == (True, 0)  # the first keep-alive
    assert [decide(False) for _ in range(10)] == [(False, 0)] * 10
    # The onset: the last two frames held back go first, then no more.
    assert decide(True) == (True, 2)
    assert decide(True) == (True, 0)
    # Within the hangover nothing was held back: no pre-roll.
    assert decide(False) == (True, 0)
    assert decide(True) == (True, 0)
    # One frame held back, after the hangover: only that one.
    assert [decide(False) for _ in range(2)] == [(True, 0), (False, 0)]
    assert decide(True) == (True, 1)
    # A keep-alive carries what was before it: nothing older is sent.
    gate = DtxGate(keepalive_s=1.0)
    assert gate.decide(False, 0.0).keepalive
    assert gate.decide(True, FRAME_S).preroll == 0
    with pytest.raises(ValueError, match="negative"):
        DtxGate(preroll_frames=-1)


def test_active_speaker_needs_a_lasting_lead_and_clears_in_silence():
    active = ActiveSpeaker(hold_s=0.8, idle_s=2.0)
    events = []
    now = 0.0
    for _ in range(50):
        events.append(active.update("alice", 30, True, now))
        events.append(active.update("bob", 50, True, now))
        now += FRAME_S
    assert [e for e in events if e] == [ActiveSpeakerChanged("alice")]
    events.clear()
    for step in range(100):  # alice goes quiet, bob keeps on
        events.append(active.update("alice", 127, False, now))
        events.append(active.update("bob", 40, True, now))
        now += FRAME_S
        if step == 10:
            assert active.current == "alice"  # hold: no flap on a short pause
    assert [e for e in events if e] == [ActiveSpeakerChanged("bob")]
    assert active.tick(now + 3.0) == ActiveSpeakerChanged(None)


# -- mixer ---------------------------------------------------------------------------


def test_mixer_volume_mute_and_limiter_never_wrap():
    mixer = Mixer()
    loud = np.full(FRAME_SAMPLES, 30000, dtype=np.int16)
    quiet = np.full(FRAME_SAMPLES, 1000, dtype=np.int16)
    out = mixer.mix({"a": loud, "b": loud, "c": loud})
    assert out.min() > 0  # int16 wrap-around would have made it negative
    later = mixer.mix({"a": loud, "b": loud, "c": loud})
    assert later.max() <= int(0.9 * 32767) + 1
    assert mixer.limited_frames >= 1
    fresh = Mixer()
    fresh.set_volume("b", 2.0)
    assert fresh.mix({"a": quiet, "b": quiet})[0] == 3000
    fresh.set_muted("a", True)
    assert fresh.mix({"a": quiet, "b": quiet})[0] == 2000
    fresh.set_volume("b", 0.0)
    assert not fresh.mix({"a": quiet, "b": quiet}).any()
    with pytest.raises(ValueError, match="volume"):
        fresh.set_volume("b", 2.5)


def test_mixer_reports_each_speakers_played_level_after_volume_and_mute():
    mixer = Mixer()
    half = np.full(FRAME_SAMPLES, 16384, dtype=np.int16)
    mixer.mix({"a": half, "b": half // 4})
    assert mixer.played_dbov("a") == pytest.approx(-6.02, abs=0.01)
    assert mixer.played_dbov("b") == pytest.approx(-18.06, abs=0.01)
    assert mixer.played_dbov("a") == -127.0  # reading starts a new period
    mixer.set_volume("a", 0.5)
    mixer.set_muted("b", True)
    mixer.mix({"a": half, "b": half})
    mixer.mix({"a": half // 8, "b": half})
    assert mixer.played_dbov("a") == pytest.approx(-12.04, abs=0.01)  # the loudest
    assert mixer.played_dbov("b") == -127.0


# -- jitter buffer ---------------------------------------------------------------


def run_path(
    config: LinkConfig,
    seconds: float,
    *,
    seed: int = 3,
    voice_pattern=lambda i: True,
    jb: JitterBuffer | None = None,
):
    """Send 20 ms packets through a netsim link on a virtual clock and play
    them out every 20 ms; returns the buffer and its playout decisions."""
    link: Link = Link(config, seed=seed)
    buffer = jb or JitterBuffer()
    decisions = []
    seq = 0
    timestamp = 0
    for tick in range(int(seconds / FRAME_S)):
        now = tick * FRAME_S
        if voice_pattern(tick) or tick % 50 == 0:
            link.send((seq & 0xFFFF, timestamp, voice_pattern(tick)), now)
            seq += 1
        timestamp += FRAME_SAMPLES
        for offset in range(4):  # arrivals between ticks, 5 ms resolution
            at = now + offset * FRAME_S / 4
            for s, ts, voice in link.receive(at):
                buffer.push(s, ts & 0xFFFFFFFF, bytes([s & 0xFF]), voice, at)
        decisions.append(buffer.pop(now + 0.0001))
    return buffer, decisions


def test_jitter_buffer_clean_link_plays_every_frame_at_the_minimum_delay():
    buffer, decisions = run_path(LinkConfig(delay_s=0.03), 10.0)
    stats = buffer.stats
    assert stats.lost == stats.concealed == stats.late == 0
    assert stats.played >= stats.received - 2  # the last ones still wait
    assert buffer.target_delay_s == pytest.approx(0.02)
    assert max(stats.delays_ms) <= 45


def test_jitter_buffer_resumes_after_a_senders_stall_in_mid_speech():
    """The sender's capture stalls 300 ms while someone speaks: its sequence
    numbers stop and its timestamps jump. Playout conceals meanwhile (and
    counts those frames lost), then plays the packets that follow; before,
    it had moved its sequence numbers on and took every later packet as
    late, concealing for good."""
    buffer = JitterBuffer()
    seq = 0
    kinds = []
    for tick in range(200):
        now = tick * FRAME_S
        if not 50 <= tick < 65:
            buffer.push(seq, tick * FRAME_SAMPLES, b"x", True, now + 0.03)
            seq += 1
        kinds.append(buffer.pop(now + 0.031).kind)
    stats = buffer.stats
    assert stats.late == 0
    assert stats.played >= stats.received - 2
    assert kinds[80:] == [PlayoutKind.NORMAL] * 120


def test_jitter_buffer_follows_jitter_and_shrinks_when_the_network_calms():
    buffer = JitterBuffer(window_s=4.0)
    run_path(LinkConfig(delay_s=0.03, jitter_s=0.04, keep_order=False), 8.0, jb=buffer)
    stats = buffer.stats
    assert 0.05 <= buffer.target_delay_s <= 0.12
    # The 95 % quantile: few frames late, none stalled.
    assert stats.late <= 0.08 * stats.received
    assert stats.played + stats.concealed + stats.fec_recovered >= 390


def test_jitter_buffer_adapts_down_by_dropping_silence():
    """A burst of jitter, then calm talk with pauses: the window forgets the
    jitter and playout catches up by accelerating through silence frames."""
    buffer = JitterBuffer(window_s=2.0)
    link: Link = Link(LinkConfig(delay_s=0.03, jitter_s=0.06, keep_order=False))
    seq = ts = 0
    latency: list[float] = []
    for tick in range(1000):
        now = tick * FRAME_S
        if tick == 200:
            link.update(now, jitter_s=0.0)
        voice = (tick // 25) % 2 == 0
        link.send((seq, ts, voice), now)
        seq += 1
        ts += FRAME_SAMPLES
        for offset in range(4):
            at = now + offset * FRAME_S / 4
            for s, t, v in link.receive(at):
                buffer.push(s, t, b"x", v, at)
        played = buffer.pop(now + 0.0001)
        if played.kind is PlayoutKind.NORMAL:
            latency.append(now - played.timestamp / SAMPLE_RATE)
        if tick == 199:
            high = buffer.target_delay_s
            jittery = np.mean(latency[-50:])
    assert high >= 0.06
    assert buffer.target_delay_s == pytest.approx(0.02)
    assert buffer.stats.accelerated >= 1
    calm = np.mean(latency[-50:])
    # Path 30 ms + target 20 ms + up to one tick of phase.
    assert calm <= 0.075 < jittery


def test_jitter_buffer_single_and_burst_losses_never_stall():
    lossy = LinkConfig(delay_s=0.03, jitter_s=0.01, loss=0.05)
    buffer, decisions = run_path(lossy, 20.0, seed=11)
    stats = buffer.stats
    kinds = [d.kind for d in decisions]
    assert stats.lost >= 30
    # Single losses with the next packet at hand come back through FEC.
    assert stats.fec_recovered >= 0.5 * stats.lost
    assert kinds.count(PlayoutKind.FEC) == stats.fec_recovered
    # After the first frame, every tick produces speech or a recovery.
    first = kinds.index(PlayoutKind.NORMAL)
    assert PlayoutKind.SILENCE not in kinds[first:]
    played = sorted(d.timestamp for d in decisions if d.timestamp is not None)
    assert len(played) == len(set(played))


def test_jitter_buffer_treats_dtx_gaps_as_silence_not_loss():
    talk = lambda i: (i // 50) % 2 == 0  # noqa: E731  1 s talk, 1 s pause
    buffer, decisions = run_path(LinkConfig(delay_s=0.03), 10.0, voice_pattern=talk)
    assert buffer.stats.lost == 0 and buffer.stats.concealed == 0
    kinds = [d.kind for d in decisions]
    assert kinds.count(PlayoutKind.SILENCE) >= 200
    assert buffer.stats.played >= buffer.stats.received - 2


def test_jitter_buffer_counts_duplicates_and_late_packets():
    buffer = JitterBuffer()
    buffer.push(0, 0, b"a", True, 0.0)
    buffer.push(0, 0, b"a", True, 0.001)
    assert buffer.stats.duplicates == 1
    assert buffer.pop(0.0).kind is PlayoutKind.SILENCE  # filling to the target
    assert buffer.pop(0.03).kind is PlayoutKind.NORMAL
    buffer.push(2, 2 * FRAME_SAMPLES, b"c", True, 0.045)
    assert buffer.pop(0.05).kind is PlayoutKind.FEC
    buffer.push(1, FRAME_SAMPLES, b"b", True, 0.055)
    assert buffer.stats.late == 1
    assert buffer.pop(0.07).payload == b"c"


def test_jitter_buffer_waits_for_a_late_packet_instead_of_losing_it():
    buffer = JitterBuffer()
    buffer.push(0, 0, b"a", True, 0.0)
    buffer.pop(0.0)
    assert buffer.pop(0.02).payload == b"a"
    # Packet 1 is 30 ms late: playout conceals in place and then plays it.
    assert buffer.pop(0.04).kind is PlayoutKind.CONCEAL
    buffer.push(1, FRAME_SAMPLES, b"b", True, 0.05)
    assert buffer.pop(0.06).payload == b"b"
    assert buffer.stats.lost == 0 and buffer.stats.late == 0
    assert buffer.stats.stretched == 1
    # A packet that never comes: after three frames of waiting it is lost.
    kinds = [buffer.pop(0.08 + 0.02 * i).kind for i in range(5)]
    assert kinds == [PlayoutKind.CONCEAL] * 5
    assert buffer.stats.lost == 2 and buffer.stats.stretched == 4


def test_jitter_buffer_one_late_first_packet_does_not_delay_the_first_talk_spurt():
    """The stream's first packet (a keep-alive) arrives 350 ms late, held up
    by a start; the talk spurt a second later comes on time over a 30 ms
    path. Over so few packets the quantile was their maximum, so the spurt
    played 400 ms after capture (as the mouth-to-ear test's first buzz, 433
    ms in one CI run, the next ones about 70)."""
    buffer = JitterBuffer()
    spurt = 50  # frames: one second
    arrivals = [(0.03 + 0.35, 0, 0, False)]
    arrivals += [
        ((spurt + k) * FRAME_S + 0.03, 1 + k, (spurt + k) * FRAME_SAMPLES, k < 10)
        for k in range(16)
    ]
    played_at = None
    for tick in range(100):
        now = tick * FRAME_S + 0.0001
        while arrivals and arrivals[0][0] <= now:
            at, seq, timestamp, voice = arrivals.pop(0)
            buffer.push(seq, timestamp, b"x", voice, at)
        playout = buffer.pop(now)
        if playout.timestamp == spurt * FRAME_SAMPLES and played_at is None:
            played_at = now
    assert played_at is not None
    # Path 30 ms + target 20 ms + a tick of phase.
    assert played_at - spurt * FRAME_S <= 0.075
    assert buffer.target_delay_s == pytest.approx(0.02)


def test_jitter_buffer_follows_jitter_from_the_first_second():
    """Jitter from the start still raises the target within a second."""
    jittery = LinkConfig(delay_s=0.03, jitter_s=0.04, keep_order=False)
    buffer, _ = run_path(jittery, 1.0)
    assert buffer.target_delay_s >= 0.05
