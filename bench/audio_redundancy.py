"""Protecting speech against loss: Opus in-band FEC against RFC 2198-style
redundancy (each packet also carries the previous frame, encoded again at a
lower rate), measured before deciding whether to build the latter.

The same chain as ``bench/audio.py``'s quality rows, on a virtual clock:
espeak-ng speech, Opus 20 ms frames, a netsim ``Link`` (30 ms delay, 20 ms
jitter) with random loss or Gilbert-Elliott bursts, the adaptive jitter
buffer, then decode, FEC or redundancy, PLC. Wideband PESQ (the ``pesq``
package) of received against sent, averaged over seeds, and the bitrate each
scheme puts on the wire (Opus payload only; redundancy's extra framing, 2
bytes a packet, counted); ``from_next_packet`` counts the lost frames
rebuilt from the next packet (its FEC, its redundant copy, or for ``none``
Opus's own guess from it). Schemes:

- ``none``: 32 kbit/s, no protection (PLC only);
- ``fec``: 32 kbit/s with in-band FEC tuned for 10 % loss (what the client
  sends);
- ``red``: 22 kbit/s primary + the previous frame at 10 kbit/s, FEC off:
  about the same bitrate as ``fec``;
- ``red_wide``: 32 + 16 kbit/s, FEC off: redundancy with half again the
  bitrate;
- ``fec_wide``: in-band FEC given that same bitrate (48 kbit/s).

    python bench/audio_redundancy.py [--seeds 3]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audio_aec import FAR_END, speech  # noqa: E402

from codec.media.audio import (  # noqa: E402
    FRAME_SAMPLES,
    SAMPLE_RATE,
    JitterBuffer,
    OpusDecoder,
    OpusEncoder,
    PlayoutKind,
)
from netsim import GilbertElliott, Link, LinkConfig  # noqa: E402

FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
SCHEMES = {
    "none": (32_000, None, 0),
    "fec": (32_000, None, 10),
    "red": (22_000, 10_000, 0),
    "red_wide": (32_000, 16_000, 0),
    "fec_wide": (48_000, None, 10),
}
"""Primary bitrate, redundant bitrate (None: no redundancy), FEC's expected
loss in percent (0: no FEC)."""
LOSSES = {
    "2%": LinkConfig(delay_s=0.03, jitter_s=0.02, loss=0.02, keep_order=False),
    "5%": LinkConfig(delay_s=0.03, jitter_s=0.02, loss=0.05, keep_order=False),
    "bursts": LinkConfig(
        delay_s=0.03,
        jitter_s=0.02,
        keep_order=False,
        gilbert_elliott=GilbertElliott(p=0.02, r=0.4, one_minus_h=0.7),
    ),
}
"""Bursts: 2 % chance to enter the bad state, 40 % to leave it, 70 % loss in
it (about 3.2 % of packets lost, in runs of one to three)."""


def _pack(primary: bytes, redundant: bytes) -> bytes:
    return struct.pack("!H", len(primary)) + primary + redundant


def _unpack(payload: bytes) -> tuple[bytes, bytes]:
    (size,) = struct.unpack_from("!H", payload)
    return payload[2 : 2 + size], payload[2 + size :]


def through_network(
    reference: np.ndarray, scheme: str, link: LinkConfig, seed: int
) -> tuple[np.ndarray, dict]:
    primary_bps, redundant_bps, fec_pct = SCHEMES[scheme]
    encoder = OpusEncoder(primary_bps, expected_loss_pct=fec_pct)
    spare = None if redundant_bps is None else OpusEncoder(redundant_bps)
    if spare is not None:
        spare.set_expected_loss(0)
    decoder = OpusDecoder()
    network: Link = Link(link, seed=seed)
    buffer = JitterBuffer()
    frames = reference.size // FRAME_SAMPLES
    out: list[np.ndarray] = []
    sent_bytes = 0
    previous = b""
    recovered = 0
    for tick in range(frames + 30):
        now = tick * FRAME_S
        if tick < frames:
            pcm = reference[tick * FRAME_SAMPLES : (tick + 1) * FRAME_SAMPLES]
            payload = encoder.encode(pcm)
            if spare is not None:
                payload, previous = _pack(payload, previous), spare.encode(pcm)
            sent_bytes += len(payload)
            network.send((tick, tick * FRAME_SAMPLES, payload), now)
        for step in range(4):
            at = now + step * FRAME_S / 4
            for seq, ts, data in network.receive(at):
                buffer.push(seq & 0xFFFF, ts, data, True, at)
        decision = buffer.pop(now + FRAME_S / 8)
        data = decision.payload or b""
        if decision.kind is PlayoutKind.NORMAL:
            out.append(decoder.decode(_unpack(data)[0] if spare else data))
        elif decision.kind is PlayoutKind.FEC:
            recovered += 1
            if spare is not None and _unpack(data)[1]:
                out.append(decoder.decode(_unpack(data)[1]))
            else:
                out.append(decoder.decode_fec(data))
        elif decision.kind is PlayoutKind.CONCEAL:
            out.append(decoder.conceal())
        elif out:
            out.append(np.zeros(FRAME_SAMPLES, dtype=np.int16))
    stats = buffer.stats
    return np.concatenate(out), {
        "bitrate_kbps": round(sent_bytes * 8 / (frames * FRAME_S) / 1000, 1),
        "lost": stats.lost,
        "from_next_packet": recovered,
        "concealed": stats.concealed,
    }


def pesq_wb(reference: np.ndarray, received: np.ndarray) -> float:
    import soxr
    from pesq import pesq

    received = received[312:]  # libopus's delay; PESQ aligns the rest
    n = min(received.size, reference.size)
    ref16 = soxr.resample(reference[:n].astype(np.float32), SAMPLE_RATE, 16000)
    deg16 = soxr.resample(received[:n].astype(np.float32), SAMPLE_RATE, 16000)
    return float(pesq(16000, ref16, deg16, "wb"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    reference = speech(FAR_END)
    result: dict = {}
    for loss_name, link in LOSSES.items():
        row = {}
        for scheme in SCHEMES:
            scores, runs = [], []
            for seed in range(1, args.seeds + 1):
                received, counts = through_network(reference, scheme, link, seed)
                scores.append(pesq_wb(reference, received))
                runs.append(counts)
            row[scheme] = {
                "pesq_wb": round(float(np.mean(scores)), 2),
                "pesq_wb_min": round(min(scores), 2),
                "bitrate_kbps": runs[0]["bitrate_kbps"],
                "lost": sum(r["lost"] for r in runs),
                "from_next_packet": sum(r["from_next_packet"] for r in runs),
                "concealed": sum(r["concealed"] for r in runs),
            }
        result[loss_name] = row
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
