"""The playout delay on a virtual clock: frames a retransmission repaired are
shown on an even cadence, the delay is bounded, and it comes down again."""

from __future__ import annotations

import pytest

from codec.media.recovery import PlayoutDelay

HZ = 90_000
FPS = 30
INTERVAL = 1 / FPS
TRANSIT = 0.07
"""Capture to ready to decode, for a frame that needed no repair (seconds)."""
OFFSET = 1000.0
"""The receiver's clock minus the sender's: the two clocks share no origin."""


def ready_times(frames: int, repaired: set[int], repair_s: float) -> list[float]:
    """When each frame is ready to decode (whole, in order): a repaired frame
    comes ``repair_s`` late, and the frames behind it wait for it in the frame
    buffer (they are released together with it)."""
    out: list[float] = []
    for n in range(frames):
        ready = OFFSET + n * INTERVAL + TRANSIT + (repair_s if n in repaired else 0)
        out.append(max(ready, out[-1]) if out else ready)
    return out


def timestamp(n: int, start: int = 0) -> int:
    return (start + round(n * INTERVAL * HZ)) & 0xFFFFFFFF


def play(
    playout: PlayoutDelay, ready: list[float], start: int = 0
) -> list[tuple[float, float]]:
    """(shown at, capture time on the receiver's clock) of each frame, each
    shown at its render time or at once when that has passed."""
    shown = []
    for n, now in enumerate(ready):
        playout.on_frame(timestamp(n, start), now)
        at = max(now, playout.render_time(timestamp(n, start)))
        shown.append((at, OFFSET + n * INTERVAL))
    return shown


def gaps(shown: list[tuple[float, float]]) -> list[float]:
    return [b[0] - a[0] for a, b in zip(shown, shown[1:], strict=False)]


def test_a_clean_stream_is_shown_as_soon_as_it_is_ready():
    playout = PlayoutDelay()
    ready = ready_times(90, set(), 0.0)
    shown = play(playout, ready)
    assert playout.delay_s == 0.0
    assert [at for at, _ in shown] == pytest.approx(ready)


def test_frames_a_retransmission_repaired_keep_the_cadence():
    # One frame in ten waits 100 ms for its retransmission (a round trip on
    # a 100 ms path); shown as soon as ready, every repair is a freeze.
    repaired = {n for n in range(300) if n % 10 == 5}
    ready = ready_times(300, repaired, 0.1)
    ready_gaps = gaps([(t, 0.0) for t in ready])
    assert max(ready_gaps) > 0.13

    playout = PlayoutDelay(tolerance_s=0.0)
    shown = play(playout, ready)
    # The first repairs come before the delay covers them: shown late.
    after_first = gaps(shown[36:])
    assert max(after_first) == pytest.approx(INTERVAL, abs=1e-6)
    assert min(after_first) == pytest.approx(INTERVAL, abs=1e-6)
    # Every frame shown at the same latency: the fastest transit plus the
    # repair time, which is within the cap.
    latencies = [at - capture for at, capture in shown[36:]]
    assert max(latencies) == pytest.approx(TRANSIT + 0.1, abs=1e-6)
    assert min(latencies) == pytest.approx(TRANSIT + 0.1, abs=1e-6)


def test_a_repair_within_the_tolerance_is_shown_late_and_delays_no_frame():
    repaired = {n for n in range(300) if n % 10 == 5}
    playout = PlayoutDelay(tolerance_s=0.07)
    shown = play(playout, ready_times(300, repaired, 0.06))
    assert playout.delay_s == 0.0
    assert max(gaps(shown)) == pytest.approx(INTERVAL + 0.06, abs=1e-6)

    playout = PlayoutDelay(tolerance_s=0.07)
    shown = play(playout, ready_times(300, repaired, 0.1))
    assert playout.delay_s == pytest.approx(0.03)
    # Every frame but the repaired ones 30 ms later; those shown 70 ms after
    # their turn, so no gap is longer than a frame interval plus that.
    latencies = sorted(at - capture for at, capture in shown[36:])
    assert latencies[len(latencies) // 2] == pytest.approx(TRANSIT + 0.03, abs=1e-6)
    assert max(gaps(shown[36:])) == pytest.approx(INTERVAL + 0.07, abs=1e-6)


def test_a_lone_late_frame_delays_no_other():
    # A host that stalled once (100 ms, holding the two frames behind too)
    # is not a repair to cover for seconds.
    playout = PlayoutDelay(tolerance_s=0.0)
    shown = play(playout, ready_times(300, {100}, 0.1))
    assert playout.delay_s == 0.0
    latencies = [at - capture for at, capture in shown]
    assert sorted(latencies)[-20] == pytest.approx(TRANSIT, abs=1e-6)


def test_the_delay_is_capped_and_a_longer_repair_is_shown_late_by_less():
    repaired = {n for n in range(300) if n % 10 == 5}
    ready = ready_times(300, repaired, 0.25)  # a retransmission lost again
    playout = PlayoutDelay(max_delay_s=0.1, tolerance_s=0.0)
    shown = play(playout, ready)
    assert playout.delay_s == pytest.approx(0.1)
    latencies = [at - capture for at, capture in shown]
    assert max(latencies) == pytest.approx(TRANSIT + 0.25, abs=1e-6)
    # Frames that needed no repair wait no longer than the cap.
    assert min(latencies[36:]) == pytest.approx(TRANSIT + 0.1, abs=1e-6)
    # The repaired frame is shown 150 ms late, not 250 ms: the gap before it
    # stays under a freeze (max(3 frame intervals, 150 ms)).
    assert max(gaps(shown[36:])) == pytest.approx(INTERVAL + 0.15, abs=1e-6)


def test_the_delay_comes_down_gently_when_the_repairs_stop():
    repaired = set(range(5, 60, 10))
    ready = ready_times(600, repaired, 0.1)
    playout = PlayoutDelay(decay=0.05, tolerance_s=0.0)
    shown = play(playout, ready)
    assert playout.delay_s == 0.0
    # It shrank by at most 5% of a frame interval per frame: no jump.
    assert min(gaps(shown[56:])) >= INTERVAL * 0.95 - 1e-9


def test_timestamps_that_wrap_around():
    repaired = {n for n in range(200) if n % 10 == 5}
    ready = ready_times(200, repaired, 0.1)
    near_wrap = 0xFFFFFFFF - round(3 * HZ)  # wraps after 3 s, frame 90
    shown = play(PlayoutDelay(tolerance_s=0.0), ready, start=near_wrap)
    assert max(gaps(shown[36:])) == pytest.approx(INTERVAL, abs=1e-6)


def test_render_time_needs_a_frame_first():
    with pytest.raises(ValueError):
        PlayoutDelay().render_time(0)


def test_a_repair_in_the_first_seconds_is_covered_by_the_initial_delay():
    # A repair of 150 ms at frame 10 (a 100 ms round trip, the frame interval
    # before the gap shows, the queues), before any quantile could see one:
    # with no initial delay the gap before it is a freeze (over 150 ms); with
    # the receiver's guess (the round trip and a frame, less the 50 ms
    # tolerance) it is not.
    ready = ready_times(300, {10}, 0.15)
    cold = play(PlayoutDelay(), ready)
    assert max(gaps(cold)) > 0.15
    warm = PlayoutDelay()
    warm.set_initial_delay(0.1 + INTERVAL - 0.05)
    assert max(gaps(play(warm, ready))) < 0.15
    # It holds only for the first window: then, with no repair since, the
    # delay comes down to what the frames need.
    assert warm.delay_s == 0.0


def queue_ready_times(frames: int, rise: range, drain: range, peak_s: float) -> list:
    """A bottleneck's queue: frames of ``rise`` ever later up to ``peak_s``,
    those of ``drain`` ever less late, down to on time (the capacity fell,
    then the sender slowed below it)."""
    out = []
    for n in range(frames):
        if n in rise:
            late = peak_s * (n - rise.start + 1) / len(rise)
        elif n in drain:
            late = peak_s * (drain.stop - n) / (len(drain) + 1)
        else:
            late = 0.0
        out.append(OFFSET + n * INTERVAL + TRANSIT + late)
    return out


def test_a_queue_that_drained_is_not_covered_after_it():
    # Repairs first (the delay at its cap), then a 300 ms queue builds over
    # 1.5 s and drains over 1 s (frames 150-224); from frame 225 every frame
    # is on time again. Before, the delay sat at its 120 ms cap for the 4 s
    # the queue's frames stayed in the window, then shrank 50 ms a second.
    repaired = {n for n in range(90) if n % 10 == 5}
    ready = queue_ready_times(600, range(150, 195), range(195, 225), 0.3)
    ready = [t + (0.2 if n in repaired else 0.0) for n, t in enumerate(ready)]
    playout = PlayoutDelay()
    shown = play(playout, ready)
    assert playout.queues == 1
    latencies = [at - capture for at, capture in shown]
    # Within 0.25 s of the drain's end every frame is shown on time.
    assert max(latencies[233:]) == pytest.approx(TRANSIT, abs=1e-6)
    # As the queue drained the picture followed it: no frame was held back
    # longer than the tolerance (the delay covers the last 0.25 s of a queue
    # less the tolerance, and this drain takes 100 ms off in 0.25 s).
    assert all(shown[n][0] - ready[n] <= 0.05 + 1e-9 for n in range(195, 233))
    # The drain is shown faster than its cadence, not in jumps: no two
    # frames at once, none after a freeze.
    assert min(gaps(shown[195:260])) > INTERVAL / 4
    assert max(gaps(shown[150:])) < 0.15


def test_a_path_whose_every_frame_is_late_stays_covered():
    # Lateness 60-100 ms on every frame (a jittery path; the base is its
    # fastest frame): a run that never ends is taken for a queue, and the
    # delay still covers what the frames of its last 0.25 s needed.
    jitter = [0.06 + 0.04 * ((n * 7) % 11) / 10 for n in range(240)]
    ready = [OFFSET + n * INTERVAL + TRANSIT + j for n, j in enumerate(jitter)]
    ready[0] -= 0.06  # one fast frame sets the base
    playout = PlayoutDelay()
    shown = play(playout, ready)
    assert playout.queues == 1
    assert playout.delay_s >= 0.03
    assert max(gaps(shown[60:])) < INTERVAL + 0.05
