"""``bench/sfu_forward.py`` drives the real SFU with a real clip: every
datagram reaches every other member, and what it reports is measured
(coarse: what holds on any machine)."""

from __future__ import annotations


def test_the_sfu_forwards_every_datagram_of_the_clip_and_is_timed(bench):
    sfu_forward = bench("sfu_forward")  # bench/sfu_forward.py
    frames = sfu_forward.pre_encode(320, 240, sfu_forward.FPS, 200_000, 8)
    # run() checks that each datagram went to each of the other members.
    per_forwarded = sfu_forward.run(frames, rooms=2, room_size=3, seconds=1.0)
    assert per_forwarded > 0
