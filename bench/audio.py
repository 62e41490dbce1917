"""Meeting audio, measured: mouth-to-ear latency, quality under loss, echo
return loss enhancement, DTX.

- ``latency``: a real server process and two sessions on loopback; the sender
  plays the stamped tone (a buzz on every whole second), the receiver's WAV
  sink plays on its own clock; latency is from the buzz's capture instant to
  the moment the frame holding its onset is pulled for playback.
- ``quality``: espeak-ng speech through the whole pure chain on a virtual
  clock: Opus (32 kbit/s, in-band FEC), a netsim ``Link`` (30 ms delay, 20 ms
  jitter, random loss 0/2/5/10 %), the adaptive jitter buffer, Opus
  decode/FEC/PLC; wideband PESQ (the ``pesq`` package, 16 kHz) of received
  against sent, and the share of frames concealed or recovered.
- ``erle``: the chosen canceller on the synthetic echo path of
  ``bench/audio_aec.py``.
- ``dtx``: packets per second for speech with 50 % silence, against sending
  every frame.

The same with real parts: ``bench/audio_mouth_to_ear.py`` (capture callback
to playback callback on PulseAudio null sinks, through both sides' audio
processes) and ``bench/audio_netsim.py`` (PESQ through ``quicmeet-cli``
processes and ``quicmeet-netsim``).

    python bench/audio.py [--seconds 8] [--plot audio.png]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import ROOT, percentile, start_quicmeet_server  # noqa: I001

sys.path.insert(0, str(ROOT))

from audio_aec import FAR_END, compare, speech  # noqa: E402

from client import Session  # noqa: E402
from client.media import Call, ToneSource, WavSink  # noqa: E402
from codec.media.audio import (  # noqa: E402
    FRAME_SAMPLES,
    SAMPLE_RATE,
    DtxGate,
    JitterBuffer,
    OpusDecoder,
    OpusEncoder,
    Playout,
    PlayoutKind,
    VoiceDetector,
)
from netsim import Link, LinkConfig  # noqa: E402

FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
PASSWORD = "correct horse battery staple"


# -- latency ----------------------------------------------------------------------


async def _latency(address: str, seconds: float, workdir: Path) -> dict:
    sessions = []
    calls = []
    for name in ("talker", "listener"):
        session = Session(address)
        await session.connect()
        await session.register(name, PASSWORD)
        await session.login(name, PASSWORD)
        sessions.append(session)
    await sessions[0].rooms.create()
    await sessions[1].rooms.join(sessions[0].rooms.room_id)
    talker = Call(sessions[0])
    listener = Call(sessions[1], audio_sink=WavSink(workdir / "heard.wav"))
    calls = [talker, listener]
    for call in calls:
        call.start()
    await talker.audio.publish(ToneSource())
    await asyncio.sleep(seconds)
    received = listener.stats()["audio_received"][0]
    receiver = next(iter(listener.audio.receivers.values()))
    samples = list(receiver._latencies_ms)
    for call, session in zip(calls, sessions, strict=True):
        await call.close()
        await session.close()
    return {
        "samples": len(samples),
        "p50_ms": round(percentile(samples, 50), 1),
        "p95_ms": round(percentile(samples, 95), 1),
        "max_ms": round(max(samples), 1) if samples else None,
        "jitter_buffer_target_ms": received["target_delay_ms"],
        "packets_lost": received["packets_lost"],
    }


def latency(seconds: float) -> dict:
    server = start_quicmeet_server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return asyncio.run(_latency(server.address, seconds, Path(tmp)))
    finally:
        server.stop()


# -- quality ---------------------------------------------------------------------


def decoded(decoder: OpusDecoder, decision: Playout) -> np.ndarray | None:
    """The samples the jitter buffer's ``decision`` plays: the packet decoded,
    recovered from the next one's FEC or concealed; None for silence."""
    if decision.kind is PlayoutKind.NORMAL:
        return decoder.decode(decision.payload or b"")
    if decision.kind is PlayoutKind.FEC:
        return decoder.decode_fec(decision.payload or b"")
    if decision.kind is PlayoutKind.CONCEAL:
        return decoder.conceal()
    return None


def through_network(reference: np.ndarray, loss: float, seed: int) -> tuple:
    """Send ``reference`` through Opus, netsim and the jitter buffer on a
    virtual clock; returns (received samples, jitter buffer stats)."""
    encoder, decoder = OpusEncoder(), OpusDecoder()
    encoder.set_expected_loss(max(5, int(loss * 100)))
    link: Link = Link(
        LinkConfig(delay_s=0.03, jitter_s=0.02, loss=loss, keep_order=False),
        seed=seed,
    )
    buffer = JitterBuffer()
    frames = reference.size // FRAME_SAMPLES
    out = []
    tick = 0
    while tick < frames + 30:
        now = tick * FRAME_S
        if tick < frames:
            pcm = reference[tick * FRAME_SAMPLES : (tick + 1) * FRAME_SAMPLES]
            packet = (
                tick,
                tick * FRAME_SAMPLES,
                encoder.encode(pcm),
                tick < frames - 1,
            )
            link.send(packet, now)
        for step in range(4):
            at = now + step * FRAME_S / 4
            for seq, ts, payload, voice in link.receive(at):
                buffer.push(seq & 0xFFFF, ts, payload, voice, at)
        frame = decoded(decoder, buffer.pop(now + FRAME_S / 8))
        if frame is not None:
            out.append(frame)
        elif out:
            out.append(np.zeros(FRAME_SAMPLES, dtype=np.int16))
        tick += 1
    return np.concatenate(out), buffer.stats


def quality(losses: list[float], seed: int = 5) -> list[dict]:
    import soxr
    from pesq import pesq

    reference = speech(FAR_END)
    rows = []
    for loss in losses:
        received, stats = through_network(reference, loss, seed)
        # libopus delays by 312 samples; PESQ aligns the rest itself.
        received = received[312:]
        n = min(received.size, reference.size)
        ref16 = soxr.resample(reference[:n].astype(np.float32), SAMPLE_RATE, 16000)
        deg16 = soxr.resample(received[:n].astype(np.float32), SAMPLE_RATE, 16000)
        frames = stats.played + stats.concealed + stats.fec_recovered
        rows.append(
            {
                "loss_pct": round(loss * 100, 1),
                "pesq_wb": round(float(pesq(16000, ref16, deg16, "wb")), 2),
                "lost": stats.lost,
                "late": stats.late,
                "fec_recovered": stats.fec_recovered,
                "concealed": stats.concealed,
                "concealment_ratio": round(
                    (stats.concealed + stats.fec_recovered) / max(frames, 1), 3
                ),
                "jitter_buffer_delay_p50_ms": round(median_delay(stats), 1),
            }
        )
    return rows


def median_delay(stats) -> float:
    delays = list(stats.delays_ms)
    return float(np.median(delays)) if delays else 0.0


# -- DTX ------------------------------------------------------------------------------


def dtx() -> dict:
    talk = speech(FAR_END)[: 6 * SAMPLE_RATE]
    signal = []
    for start in range(0, talk.size, SAMPLE_RATE):
        signal += [talk[start : start + SAMPLE_RATE], np.zeros(SAMPLE_RATE)]
    audio = np.concatenate(signal).astype(np.int16)
    detector, gate = VoiceDetector(), DtxGate()
    frames = audio.size // FRAME_SAMPLES
    sent = 0
    for i in range(frames):
        decision = gate.decide(
            detector.is_speech(audio[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]),
            i * FRAME_S,
        )
        # A talk spurt's onset frames, held back, go out with its first.
        sent += decision.send + decision.preroll
    seconds = frames * FRAME_S
    return {
        "seconds": round(seconds, 1),
        "silence_share": 0.5,
        "packets_per_s": round(sent / seconds, 1),
        "continuous_packets_per_s": round(1 / FRAME_S, 1),
        "ratio": round(sent / frames, 3),
    }


def plot(rows: list[dict], path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axis = plt.subplots(figsize=(5, 3.2))
    losses = [r["loss_pct"] for r in rows]
    axis.plot(losses, [r["pesq_wb"] for r in rows], "o-", label="PESQ (wideband)")
    axis.set_xlabel("random loss, % (20 ms jitter)")
    axis.set_ylabel("PESQ MOS-LQO")
    axis.set_ylim(1, 4.7)
    axis.grid(True, alpha=0.3)
    axis.legend()
    fig.tight_layout()
    fig.savefig(path)
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    rows = quality([0.0, 0.02, 0.05, 0.10])
    chosen = "livekit (WebRTC AEC3 + NS)"
    result = {
        "mouth_to_ear": latency(args.seconds),
        "quality": rows,
        "erle": {chosen: compare(40.0, 10.0, 2.0)["candidates"][chosen]},
        "dtx": dtx(),
    }
    if args.plot is not None:
        result["plot"] = plot(rows, args.plot)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
