"""Meeting participants that replay pre-encoded video: stand-ins for other
people's machines, cheap enough to run several beside the app under test.

Each participant registers, joins the room and publishes a camera track, then
sends a loop of stamped synthetic frames, encoded once at start, at the
source rate over real QUIC datagrams. The loop starts with a keyframe, so a
receiver that missed something is whole again within one loop (requests for
keyframes are not answered). The stamps carry the frame number within the
loop, so a receiver can read that a picture is intact, not how old it is.

    python -m tests.ui.replay --server HOST:PORT --room CODE --names a,b,c \\
        [--size 640x480] [--fps 30] [--loop 30]

Prints ``ready`` once every participant publishes, then runs until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys

from client import Session
from client.media.sender import default_bitrate_bps
from codec.media import VideoPacketizer
from codec.media.packet import rewrite_transport_seq
from codec.media.video import VIDEO_CLOCK_HZ, EncodedFrame, encode_synthetic_clip
from tests.conftest import PASSWORD, ROOT

MAX_QUEUED = 64
"""Datagrams a participant lets wait before it skips a frame (as a real one)."""


def start(
    server: str, room: str, names: list[str], size: str, fps: float
) -> subprocess.Popen[str]:
    """Run ``names`` in a child process; return once every one of them
    sends."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.ui.replay",
         "--server", server, "--room", room, "--names", ",".join(names),
         "--size", size, "--fps", str(fps)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
        raise RuntimeError("the replaying participants did not start")
    return proc


class Participant:
    """One connection that sends the loop as its camera track."""

    def __init__(
        self, session: Session, track_id: int, loop: list[EncodedFrame]
    ) -> None:
        self.session = session
        self.loop = loop
        self.packetizer = VideoPacketizer(track_id)
        self.transport_seq = 0
        self.sent = 0
        self.skipped = 0

    def send(self, now: float) -> None:
        frame = self.loop[self.sent % len(self.loop)]
        packets = self.packetizer.packetize(
            frame.data, round(now * VIDEO_CLOCK_HZ), frame.keyframe
        )
        datagrams = []
        for packet in packets:
            data = bytearray(packet.serialize())
            rewrite_transport_seq(data, self.transport_seq)
            self.transport_seq += 1
            datagrams.append(bytes(data))
        if self.session.rooms.send_datagrams(datagrams, MAX_QUEUED):
            self.sent += 1
        else:
            self.skipped += 1


async def run(
    server: str, room: str, names: list[str], size: tuple[int, int], fps: float, n: int
) -> None:
    bitrate = default_bitrate_bps(*size, fps, "camera")
    loop_frames = encode_synthetic_clip(*size, fps, bitrate, n)
    participants = []
    for name in names:
        session = Session(server, reconnect=False)
        await session.connect()
        await session.register(name, PASSWORD)
        await session.login(name, PASSWORD)
        await session.rooms.join(room)
        track = await session.rooms.publish("camera", *size, fps)
        participants.append(Participant(session, track.track_id, loop_frames))
    print("ready", flush=True)
    clock = asyncio.get_running_loop()
    interval = 1.0 / fps
    due = clock.time()
    while True:
        now = clock.time()
        for participant in participants:
            participant.send(now)
        due += interval
        if due < clock.time() - interval:
            due = clock.time()
        await asyncio.sleep(max(0.0, due - clock.time()))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--room", required=True)
    parser.add_argument("--names", required=True, help="comma-separated user names")
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--loop", type=int, default=30, help="frames in the loop")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    asyncio.run(
        run(
            args.server,
            args.room,
            args.names.split(","),
            (width, height),
            args.fps,
            args.loop,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
