"""Speech quality through real processes: wideband PESQ of what a listener
plays against what a talker sent, across ``quicmeet-netsim``.

A real server; the talker's ``quicmeet-cli meet`` sends espeak-ng speech
(``wav:``, after 8 s of silence so the listener is in the room) through
``quicmeet-netsim`` (30 ms delay, 20 ms jitter that may reorder, random
loss 0/2/5/10 %, both directions of the talker's connection); the
listener, on the server directly, plays into a WAV sink. What it played is
aligned with the speech by cross-correlation and scored with wideband PESQ
(the ``pesq`` package, 16 kHz); its meeting stats give the share of frames
concealed or recovered by FEC. The same figures on a virtual clock, through
the pure chain, are ``bench/audio.py``'s ``quality``.

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
from _common import start_meet, start_netsim, start_quicmeet_server  # noqa: I001
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


def align(reference: np.ndarray, heard: np.ndarray) -> np.ndarray:
    """The stretch of ``heard`` that best lines up with ``reference``."""
    size = 1 << int(np.ceil(np.log2(reference.size + heard.size)))
    spectrum = np.fft.rfft(heard.astype(float), size) * np.conj(
        np.fft.rfft(reference.astype(float), size)
    )
    lag = int(np.argmax(np.fft.irfft(spectrum, size)[: heard.size]))
    out = np.zeros(reference.size, dtype=np.int16)
    part = heard[lag : lag + reference.size]
    out[: part.size] = part
    return out


def one_loss(loss_pct: float, seed: int, reference: np.ndarray, work: Path) -> dict:
    import soxr
    from pesq import pesq

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
        talker = start_meet(
            netsim.address, homes["talker"], "--create", "--video", "none",
            "--audio", f"wav:{work / 'speech.wav'}", "--duration", str(seconds + 2),
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
    heard = align(reference, read_wav(heard_path))
    ref16 = soxr.resample(reference.astype(np.float32), SAMPLE_RATE, 16000)
    deg16 = soxr.resample(heard.astype(np.float32), SAMPLE_RATE, 16000)
    audio = json.loads(stats_path.read_text())["audio_received"][0]
    frames = sum(
        audio[k] for k in ("frames_played", "frames_concealed", "frames_fec_recovered")
    )
    return {
        "loss_pct": loss_pct,
        "pesq_wb": round(float(pesq(16000, ref16, deg16, "wb")), 2),
        "packets_received": audio["packets_received"],
        "packets_lost": audio["packets_lost"],
        "fec_recovered": audio["frames_fec_recovered"],
        "concealed": audio["frames_concealed"],
        "concealment_ratio": round(
            (audio["frames_concealed"] + audio["frames_fec_recovered"])
            / max(frames, 1),
            3,
        ),
        "jitter_buffer_delay_ms": audio["jitter_buffer_delay_ms"],
    }


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
