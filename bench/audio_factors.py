"""What each part of the real send chain costs in speech quality, on a
virtual clock (no machine load in the figures).

``bench/audio.py``'s ``quality`` runs a lean chain: every frame sent and
voiced, the encoder told to expect the link's loss (at least 5 %). The
product's sender differs in two ways, added here one at a time through the
same Opus, netsim ``Link`` (30 ms delay, 20 ms jitter that may reorder,
random loss) and jitter buffer:

- ``lean``: ``bench/audio.py``'s chain;
- ``fec10``: the encoder's expected loss fixed at 10 % (the sender's
  default before it followed the receivers' reports);
- ``fec10_dtx``: and the sender's VAD and DTX as they were before the
  onset pre-roll (``VoiceDetector``, ``DtxGate(preroll_frames=0)``: silence
  not sent beyond keep-alives, hangover frames without the V bit,
  timestamps running on across the gaps as the sender's do);
- ``fec10_dtx_preroll``: DTX as the sender does it, each talk spurt led by
  the frames held back just before it (the product before the listeners'
  loss reports);
- ``feedback_dtx_preroll``: the same with the expected loss and bitrate
  that the talker's ``FecPolicy`` settles at when the listener reports the
  link's loss (its steady state: the second or two before the first
  report, at 10 %, is not modelled).

Each row: wideband PESQ (the ``pesq`` package, 16 kHz) of the played
samples against the sent speech, aligned once and per utterance
(``bench/_align.py``), and the jitter buffer's counters, for each loss
pattern (seed) and their mean.

    python bench/audio_factors.py [--losses 0,2,5] [--seeds 5,6,7]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from _common import ROOT  # noqa: I001

sys.path.insert(0, str(ROOT))

from _align import align_global, align_utterances  # noqa: E402
from audio import decoded  # noqa: E402
from audio_aec import FAR_END, speech  # noqa: E402

from codec.media.audio import (  # noqa: E402
    FRAME_SAMPLES,
    SAMPLE_RATE,
    DtxGate,
    FecPolicy,
    JitterBuffer,
    OpusDecoder,
    OpusEncoder,
    VoiceDetector,
)
from netsim import Link, LinkConfig  # noqa: E402

FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
LEAD_FRAMES = 50
"""Silence sent before the speech (as ``bench/audio_netsim.py`` does), so
DTX starts in a pause."""


def packets(
    reference: np.ndarray,
    expected_loss: int,
    dtx: bool,
    preroll: int = 0,
    bitrate_bps: int | None = None,
) -> list[tuple]:
    """(send tick, seq, timestamp, payload, voice) for what the sender sends,
    as ``AudioSender`` does (``preroll``: the gate's ``preroll_frames``)."""
    encoder = OpusEncoder() if bitrate_bps is None else OpusEncoder(bitrate_bps)
    encoder.set_expected_loss(expected_loss)
    detector, gate = VoiceDetector(), DtxGate(preroll_frames=preroll)
    lead = np.zeros(LEAD_FRAMES * FRAME_SAMPLES, dtype=np.int16)
    audio = np.concatenate([lead, reference])
    out = []
    held: list[tuple[int, np.ndarray]] = []
    for tick in range(audio.size // FRAME_SAMPLES):
        pcm = audio[tick * FRAME_SAMPLES : (tick + 1) * FRAME_SAMPLES]
        voice = True
        if dtx:
            decision = gate.decide(detector.is_speech(pcm), tick * FRAME_S)
            if not decision.send:
                held.append((tick, pcm))
                continue
            for early, early_pcm in held[len(held) - decision.preroll :]:
                out.append((tick, early * FRAME_SAMPLES, early_pcm, False))
            held = []
            voice = decision.voice
        out.append((tick, tick * FRAME_SAMPLES, pcm, voice))
    sent = [
        (tick, seq, ts, encoder.encode(pcm), voice)
        for seq, (tick, ts, pcm, voice) in enumerate(out)
    ]
    encoder.close()
    return sent


def play(sent: list[tuple], loss: float, seed: int, ticks: int) -> tuple:
    """Through the link and the jitter buffer; (played samples from the
    speech's first sample, jitter buffer stats)."""
    link: Link = Link(
        LinkConfig(delay_s=0.03, jitter_s=0.02, loss=loss, keep_order=False),
        seed=seed,
    )
    decoder, buffer = OpusDecoder(), JitterBuffer()
    by_tick: dict[int, list[tuple]] = {}
    for tick, *packet in sent:
        by_tick.setdefault(tick, []).append(tuple(packet))
    out = []
    for tick in range(ticks + 30):
        now = tick * FRAME_S
        for seq, ts, payload, voice in by_tick.get(tick, []):
            link.send((seq & 0xFFFF, ts, payload, voice), now)
        for step in range(4):
            at = now + step * FRAME_S / 4
            for seq, ts, payload, voice in link.receive(at):
                buffer.push(seq, ts, payload, voice, at)
        frame = decoded(decoder, buffer.pop(now + FRAME_S / 8))
        out.append(np.zeros(FRAME_SAMPLES, dtype=np.int16) if frame is None else frame)
    decoder.close()
    return np.concatenate(out), buffer.stats


def score(reference: np.ndarray, heard: np.ndarray) -> dict:
    """Wideband PESQ of ``heard`` against ``reference``, aligned once and
    per utterance (``bench/_align.py``)."""
    import soxr
    from pesq import pesq

    def wb(samples: np.ndarray) -> float:
        ref16 = soxr.resample(reference.astype(np.float32), SAMPLE_RATE, 16000)
        deg16 = soxr.resample(samples.astype(np.float32), SAMPLE_RATE, 16000)
        return round(float(pesq(16000, ref16, deg16, "wb")), 2)

    per_utterance, shifts = align_utterances(reference, heard)
    return {
        "pesq_wb": wb(align_global(reference, heard)),
        "pesq_wb_per_utterance": wb(per_utterance),
        "utterance_shift_ms": shifts,
    }


def run(loss_pct: float, seeds: list[int], reference: np.ndarray) -> list[dict]:
    policy = FecPolicy()
    policy.report("listener", loss_pct / 100, 0.0)
    steady = policy.setting(0.0)
    preroll = DtxGate().preroll_frames
    variants = {
        "lean": (max(5, int(loss_pct)), False, 0, None),
        "fec10": (10, False, 0, None),
        "fec10_dtx": (10, True, 0, None),
        "fec10_dtx_preroll": (10, True, preroll, None),
        "feedback_dtx_preroll": (
            steady.expected_loss_pct,
            True,
            preroll,
            steady.bitrate_bps,
        ),
    }
    ticks = LEAD_FRAMES + reference.size // FRAME_SAMPLES
    rows = []
    for name, (expected, dtx, preroll_frames, bitrate) in variants.items():
        sent = packets(reference, expected, dtx, preroll_frames, bitrate)
        runs = []
        for seed in seeds:
            played, stats = play(sent, loss_pct / 100, seed, ticks)
            runs.append(
                {
                    "seed": seed,
                    **score(reference, played),
                    "fec_recovered": stats.fec_recovered,
                    "concealed": stats.concealed,
                    "accelerated": stats.accelerated,
                    "stretched": stats.stretched,
                }
            )
        rows.append(
            {
                "loss_pct": loss_pct,
                "variant": name,
                "expected_loss_pct": expected,
                "bitrate_bps": bitrate,
                "packets_sent": len(sent),
                "pesq_wb_mean": round(float(np.mean([r["pesq_wb"] for r in runs])), 2),
                "runs": runs,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", default="0,2,5")
    parser.add_argument("--seeds", default="5,6,7")
    args = parser.parse_args()
    reference = speech(FAR_END)
    seeds = [int(x) for x in args.seeds.split(",")]
    rows = []
    for loss in (float(x) for x in args.losses.split(",")):
        rows += run(loss, seeds, reference)
    print(json.dumps({"factors": rows}, indent=1))


if __name__ == "__main__":
    main()
