"""The SFU's own CPU per forwarded datagram, apart from QUIC.

``server.sfu.Forwarder`` forwards the video of ``--rooms`` rooms of
``--room-size`` members on a virtual clock: each member publishes a
pre-encoded 640x480 clip at about 500 kbit/s and 30 fps (as
``bench/meeting.py``'s load does), and each member connection is a stand-in
that only queues what the SFU gives it (no packets, no crypto, no system
calls). What is timed is the SFU's work on each datagram: routing, NACK
bookkeeping, weighing, admission, the pacer's lanes, transport numbering,
the send history and the retransmission cache, and its reading of the
loop thread's wait for a CPU (``server.monitor.cpu_wait``, the real one).

Prints JSON: µs of process CPU per forwarded datagram, best of three runs
of ``--seconds`` of virtual time each.

    python bench/sfu_forward.py [--rooms 6] [--room-size 4] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _meeting_load import (  # noqa: E402
    _FRAME_END,
    _SEQ_START,
    _TRACK_ID,
    CLOCK_HZ,
    pre_encode,
)

from codec.media.cc import MediaCongestionControl  # noqa: E402
from server.monitor import cpu_wait  # noqa: E402
from server.sfu import Forwarder  # noqa: E402

FPS = 30.0


class _Loss:
    """What the SFU reads of aioquic's recovery: the RTT and the controller."""

    _rtt_initialized = True
    _rtt_smoothed = 0.02

    def __init__(self) -> None:
        self._cc = MediaCongestionControl(max_datagram_size=1200)


class _Quic:
    def __init__(self) -> None:
        self._datagrams_pending: deque[bytes] = deque()
        self._loss = _Loss()

    def send_datagram_frame(self, data: bytes) -> None:
        self._datagrams_pending.append(data)


class _Member:
    """A member connection that keeps nothing: what the SFU queues is
    dropped after each frame, as a connection would send it."""

    max_media_datagram = 1200

    def __init__(self) -> None:
        self.quic = _Quic()

    def transmit_soon(self) -> None:
        pass


class _Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(frames: list[list[bytes]], rooms: int, room_size: int, seconds: float) -> float:
    clock = _Clock()
    sfu = Forwarder(clock, cpu_wait=cpu_wait)
    members: list[tuple[_Member, list[list[bytes]]]] = []
    for room in range(rooms):
        listed = []
        for index in range(room_size):
            track_id = 1000 + room * room_size + index
            tid = track_id.to_bytes(4, "big")
            clip = [
                [d[: _TRACK_ID.start] + tid + d[_TRACK_ID.stop :] for d in frame]
                for frame in frames
            ]
            member = _Member()
            members.append((member, clip))
            listed.append((member, [track_id]))
        sfu.set_room(room, listed)
    seqs = [0] * len(members)
    frame_numbers = [0] * len(members)
    # Members send in turn, in the first quarter of each frame interval.
    step = 1 / FPS / len(members) / 4
    started = time.process_time()
    for number in range(int(seconds * FPS)):
        clock.now += 1 / FPS
        for index, (member, clip) in enumerate(members):
            clock.now += step
            frame = clip[1 + number % (len(clip) - 1)] if number else clip[0]
            # Numbered and stamped as bench/_meeting_load.py's members do.
            seq = seqs[index]
            stamp = (int(clock.now * CLOCK_HZ) & 0xFFFFFFFF).to_bytes(4, "big")
            frame_number = (frame_numbers[index] & 0xFFFF).to_bytes(2, "big")
            frame_numbers[index] += 1
            for data in frame:
                header = (seq & 0xFFFF).to_bytes(2, "big") + stamp + frame_number
                sfu.on_datagram(member, data[:_SEQ_START] + header + data[_FRAME_END:])
                seq += 1
            seqs[index] = seq
        for member, _ in members:
            member.quic._datagrams_pending.clear()
    elapsed = time.process_time() - started
    forwarded = sfu.stats.forwarded
    # Every datagram reaches every other member: nothing is dropped here.
    assert forwarded == sfu.stats.received * (room_size - 1), sfu.stats
    return elapsed / forwarded * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=6)
    parser.add_argument("--room-size", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    frames = pre_encode(640, 480, FPS, 500_000, 60)
    per = [run(frames, args.rooms, args.room_size, args.seconds) for _ in range(3)]
    datagrams = sum(len(f) for f in frames[1:]) / (len(frames) - 1)
    print(
        json.dumps(
            {
                "benchmark": "sfu_forward",
                "rooms": args.rooms,
                "room_size": args.room_size,
                "datagrams_per_frame": round(datagrams, 2),
                "sfu_us_per_forwarded": round(min(per), 2),
                "runs_us": [round(p, 2) for p in per],
            }
        )
    )


if __name__ == "__main__":
    main()
