"""Speech quality through real processes: wideband PESQ of what a listener
plays against what a talker sent, across ``quicmeet-netsim``.

A real server; the talker's ``quicmeet-cli meet`` sends espeak-ng speech
(``wav:``, after 8 s of silence so the listener is in the room) through
``quicmeet-netsim`` (30 ms delay, 20 ms jitter that may reorder, random
loss 0/2/5/10 %, both directions of the talker's connection); the
listener, on the server directly, plays into a WAV sink. What it played is
aligned with the speech by cross-correlation, once for the whole talk and
once per utterance (``bench/_align.py``: the jitter buffer's stretching and
skipping moves utterances against each other), and scored with wideband
PESQ (the ``pesq`` package, 16 kHz). The meeting stats give the share of
frames concealed or recovered by FEC, the jitter buffer's expand and
accelerate operations (milliseconds inserted and dropped), the WAV sink's
late pulls and the talker's capture gaps, VAD and DTX counters. The same
figures on a virtual clock, through the pure chain, are ``bench/audio.py``'s
``quality``; ``bench/audio_factors.py`` adds the sender's parts one by one.

    python bench/audio_netsim.py [--losses 0,2,5,10] [--seed 5]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import wave
from pathlib import Path

import numpy as np
from _align import align_global, align_utterances  # noqa: I001
from _common import start_meet, start_netsim, start_quicmeet_server
from audio_aec import FAR_END, speech
from meeting import make_accounts

from client import Home
from client.home import SavedSession
from client.media.audio_sources import read_wav
from codec.media.audio import SAMPLE_RATE

LEAD_S = 8.0
"""Silence before the speech: the listener joins meanwhile (3 s was too
little on a loaded machine: a listener that took longer to start heard
only the last third)."""
TAIL_S = 2.0


def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(samples.astype("<i2").tobytes())


def one_loss(loss_pct: float, seed: int, reference: np.ndarray, work: Path) -> dict:
    server = start_quicmeet_server()
    link = ["--delay", "30ms", "--jitter", "20ms", "--jitter-reorders"]
    netsim = start_netsim(server.address, [*link, "--loss", f"{loss_pct}%"], seed)
    try:
        names = ["talker", "listener"]
        tokens = asyncio.run(make_accounts(server.address, names))
        homes = {name: work / f"{name}-{loss_pct}" for name in names}
        addresses = {"talker": netsim.address, "listener": server.address}
        for name, token in zip(names, tokens, strict=True):
            Home(homes[name]).save_session(
                SavedSession(addresses[name], name, token, 2**53)
            )
        seconds = LEAD_S + reference.size / SAMPLE_RATE + TAIL_S
        talker_stats = work / f"talker-{loss_pct}.json"
        talker = start_meet(
            netsim.address, homes["talker"], "--create", "--video", "none",
            "--audio", f"wav:{work / 'speech.wav'}", "--duration", str(seconds + 2),
            "--stats", str(talker_stats),
        )  # fmt: skip
        assert talker.stdout is not None
        room_id = json.loads(talker.stdout.readline())["room"]["room_id"]
        heard_path = work / f"heard-{loss_pct}.wav"
        stats_path = work / f"listener-{loss_pct}.json"
        listener = start_meet(
            server.address, homes["listener"], "--room", room_id,
            "--video", "none", "--audio", "none", "--play", f"wav:{heard_path}",
            "--duration", str(seconds), "--stats", str(stats_path),
        )  # fmt: skip
        for proc in (listener, talker):
            if proc.wait(seconds + 60) != 0:
                raise RuntimeError(f"meet failed: {proc.stderr.read()}")
    finally:
        netsim.stop()
        server.stop()
    heard = read_wav(heard_path)
    per_utterance, shifts = align_utterances(reference, heard)
    listener = json.loads(stats_path.read_text())
    audio = listener["audio_received"][0]
    sent = json.loads(talker_stats.read_text())["audio_sent"]
    frames = sum(
        audio[k] for k in ("frames_played", "frames_concealed", "frames_fec_recovered")
    )
    return {
        "loss_pct": loss_pct,
        "pesq_wb": wideband(reference, align_global(reference, heard)),
        "pesq_wb_per_utterance": wideband(reference, per_utterance),
        "utterance_shift_ms": shifts,
        "packets_received": audio["packets_received"],
        "packets_lost": audio["packets_lost"],
        "packets_late": audio["packets_late"],
        "fec_recovered": audio["frames_fec_recovered"],
        "concealed": audio["frames_concealed"],
        "concealment_ratio": round(
            (audio["frames_concealed"] + audio["frames_fec_recovered"])
            / max(frames, 1),
            3,
        ),
        # Each is one 20 ms frame dropped (accelerate) or inserted (expand).
        "accelerated_ms": audio["frames_accelerated"] * 20,
        "stretched_ms": audio["frames_stretched"] * 20,
        "jitter_buffer_delay_ms": audio["jitter_buffer_delay_ms"],
        "sink": {k: listener["audio_sink"].get(k) for k in SINK_KEYS},
        "sent": {k: sent.get(k) for k in SENT_KEYS},
    }


SINK_KEYS = ("seconds", "late_pulls", "max_late_ms")
SENT_KEYS = (
    "frames_captured",
    "capture_gap_frames",
    "frames_voiced",
    "frames_suppressed",
    "frames_preroll",
    "packets_sent",
    "expected_loss_pct",
    "bitrate_bps",
)


def wideband(reference: np.ndarray, heard: np.ndarray) -> float:
    """Wideband PESQ (16 kHz) of ``heard`` against ``reference``."""
    import soxr
    from pesq import pesq

    ref16 = soxr.resample(reference.astype(np.float32), SAMPLE_RATE, 16000)
    deg16 = soxr.resample(heard.astype(np.float32), SAMPLE_RATE, 16000)
    return round(float(pesq(16000, ref16, deg16, "wb")), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", default="0,2,5,10")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    reference = speech(FAR_END)
    rows = []
    with tempfile.TemporaryDirectory(prefix="quicmeet-bench-audio-") as tmp:
        work = Path(tmp)
        lead = np.zeros(int(LEAD_S * SAMPLE_RATE), dtype=np.int16)
        write_wav(work / "speech.wav", np.concatenate([lead, reference]))
        for loss in (float(x) for x in args.losses.split(",")):
            rows.append(one_loss(loss, args.seed, reference, work))
    print(json.dumps({"quality": rows}, indent=1))


if __name__ == "__main__":
    main()
