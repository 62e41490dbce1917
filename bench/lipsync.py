"""Lip sync, measured: the offset between a remote person's pictures and the
sound captured with them, at the receiver (positive: picture late).

- ``virtual``: the pure chain on a virtual clock (``tests/codec/media/
  lipsync_path.py``): audio in talk spurts through a netsim ``Link`` and the
  jitter buffer, 30 fps video through another, 10 ms (or 150 ms) to decode;
  the offset of each rendered picture against the moment its audio really
  played, with lip sync and without it (pictures shown when ready). Does not
  depend on the machine's load.
- ``loopback``: two ``quicmeet-cli meet`` processes and a real server; the
  far one sends synthetic 320x240 video at 15 fps and the stamped buzz
  through ``quicmeet-netsim`` (clean, or 20 ms of jitter each way), the near
  one plays the audio into a WAV sink. Two figures: the receiver's own
  offset statistics (its lip sync's estimate), and an independent one, the
  median glass-to-glass latency of the pictures (from their stamps) less
  the median mouth-to-ear latency of the buzz onsets, both on the wall clock.

    python bench/lipsync.py [--seconds 15] [--skip-loopback]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from _common import (  # noqa: I001
    ROOT,
    Child,
    percentile,
    start_meet,
    start_netsim,
    start_quicmeet_server,
)
from meeting import make_homes

sys.path.insert(0, str(ROOT))

from netsim import LinkConfig  # noqa: E402
from tests.codec.media.lipsync_path import run_lip_sync  # noqa: E402

VIRTUAL_LINKS = {
    "clean": LinkConfig(delay_s=0.03),
    "jitter_20ms": LinkConfig(delay_s=0.03, jitter_s=0.02, keep_order=False),
}


def _summary(offsets: list[float]) -> dict:
    magnitudes = [abs(o) for o in offsets]
    return {
        "pictures": len(offsets),
        "median_ms": round(percentile(offsets, 50), 1) if offsets else None,
        "p95_abs_ms": round(percentile(magnitudes, 95), 1) if offsets else None,
        "max_abs_ms": round(max(magnitudes), 1) if offsets else None,
    }


def virtual(seconds: float) -> dict:
    results = {}
    for name, link in VIRTUAL_LINKS.items():
        for decode_s in (0.01, 0.15):
            key = f"{name}_decode_{round(decode_s * 1000)}ms"
            synced = run_lip_sync(link, seconds, decode_s=decode_s, warmup_s=5.0)
            plain = run_lip_sync(
                link, seconds, decode_s=decode_s, warmup_s=5.0, synced=False
            )
            results[key] = {
                "synced": {
                    **_summary(synced.offsets_ms),
                    "audio_target_ms": round(synced.audio_target_ms, 1),
                },
                "unsynced": _summary(plain.offsets_ms),
            }
    return results


def _netsim(upstream: str, jitter_ms: int) -> Child:
    link = ["--delay", "15ms"]
    if jitter_ms:
        link += ["--jitter", f"{jitter_ms}ms"]
    return start_netsim(upstream, link, 5)


def loopback(jitter_ms: int, seconds: float) -> dict:
    server = start_quicmeet_server()
    netsim = _netsim(server.address, jitter_ms)
    work = Path(tempfile.mkdtemp(prefix="quicmeet-bench-lipsync-"))
    try:
        make_homes(
            work, server.address, {"far": netsim.address, "near": server.address}
        )
        far = start_meet(
            netsim.address, work / "far", "--create",
            "--video", "synthetic", "--size", "320x240", "--fps", "15",
            "--audio", "tone", "--duration", str(seconds + 4),
        )  # fmt: skip
        assert far.stdout is not None
        room_id = json.loads(far.stdout.readline())["room"]["room_id"]
        near = start_meet(
            server.address, work / "near", "--room", room_id,
            "--video", "none", "--play", f"wav:{work / 'heard.wav'}",
            "--duration", str(seconds), "--stats", str(work / "near.json"),
        )  # fmt: skip
        for proc in (near, far):
            if proc.wait(seconds + 60) != 0:
                raise RuntimeError(f"meet failed: {proc.stderr.read()}")
        stats = json.loads((work / "near.json").read_text())
    finally:
        netsim.stop()
        server.stop()
    video = next(r for r in stats["received"] if r["kind"] == "camera")
    audio = stats["audio_received"][0]
    glass = video.get("latency_ms", {}).get("p50")
    mouth = audio["stamped_latency_ms"]["p50"]
    return {
        "jitter_ms": jitter_ms,
        "receiver_estimate_ms": video.get("av_offset_ms"),
        "glass_to_glass_p50_ms": glass,
        "mouth_to_ear_p50_ms": mouth,
        "buzz_onsets": audio["stamped_latency_ms"]["count"],
        "independent_offset_ms": (
            round(glass - mouth, 1) if glass is not None and mouth is not None else None
        ),
        "jitter_buffer_target_ms": audio["target_delay_ms"],
        "fps": video["fps"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--skip-loopback", action="store_true")
    args = parser.parse_args()
    result: dict = {"virtual": virtual(max(args.seconds, 10.0))}
    if not args.skip_loopback:
        result["loopback"] = {
            "clean": loopback(0, args.seconds),
            "jitter_20ms": loopback(20, args.seconds),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
