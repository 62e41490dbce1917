"""The device buffer's policy on a virtual clock: low at the start, one rung
up per glitch, down again only after a calm period and in quiet, with the
calm period doubling when a step down proved too short."""

from __future__ import annotations

import pytest

from codec.media.audio import MICROPHONE_LADDER_S, DeviceLatency, LatencyStep


def test_starts_on_the_lowest_rung_and_climbs_one_rung_per_glitch():
    policy = DeviceLatency((0.04, 0.06, 0.1), settle_s=1.0)
    assert policy.current_s == 0.04
    assert policy.calm(0.0, quiet=True) is None
    assert policy.glitch(5.0) == LatencyStep(5.0, 0.04, 0.06, "glitch")
    assert policy.current_s == 0.06
    # A glitch while the new device settles belongs to the switch.
    assert policy.glitch(5.5) is None
    assert policy.current_s == 0.06
    assert policy.glitch(7.0) == LatencyStep(7.0, 0.06, 0.1, "glitch")
    # At the top the glitches are counted and change nothing.
    assert policy.glitch(9.0) is None
    assert policy.current_s == 0.1
    assert policy.glitches == 4


def test_steps_down_after_a_calm_period_only_while_quiet():
    policy = DeviceLatency((0.04, 0.06, 0.1), calm_s=60.0)
    policy.glitch(0.0)
    policy.glitch(10.0)
    assert policy.current_s == 0.1
    steps = []
    for tenth in range(101, 2000):
        now = tenth / 10.0
        step = policy.calm(now, quiet=not 70.0 <= now < 75.0)
        if step is not None:
            steps.append(step)
    # 60 s after the last glitch (70 s), but not while something was audible.
    assert steps[0] == LatencyStep(75.0, 0.1, 0.06, "calm")
    assert steps[1] == LatencyStep(135.0, 0.06, 0.04, "calm")
    assert len(steps) == 2 and policy.current_s == 0.04


def test_a_quiet_moment_after_the_calm_period_is_waited_for():
    policy = DeviceLatency((0.04, 0.06), calm_s=30.0)
    policy.glitch(0.0)
    assert policy.calm(31.0, quiet=False) is None
    assert policy.calm(45.0, quiet=False) is None
    assert policy.calm(45.1, quiet=True) == LatencyStep(45.1, 0.06, 0.04, "calm")


def test_a_step_down_that_glitches_doubles_the_calm_needed_up_to_the_cap():
    policy = DeviceLatency((0.04, 0.06), calm_s=10.0, max_calm_s=35.0)
    now = 0.0
    downs = []
    for _ in range(4):
        policy.glitch(now)
        step = None
        while step is None:
            now += 0.5
            step = policy.calm(now, quiet=True)
        downs.append(step.at_s)
        now += 2.0  # the lower rung underruns soon after
    gaps = [later - earlier for earlier, later in zip(downs, downs[1:], strict=False)]
    # Each wait is 2 s of the low rung plus the calm needed: 10, 20, 35 (cap).
    assert gaps == [22.0, 37.0, 37.0]
    assert policy.calm_needed_s == 35.0


def test_a_step_down_that_holds_keeps_the_calm_period():
    policy = DeviceLatency((0.04, 0.06, 0.1), calm_s=10.0)
    policy.glitch(0.0)
    policy.glitch(2.0)
    assert policy.calm(12.0, quiet=True) is not None
    # A glitch after the lower rung held a whole calm period: no doubling.
    assert policy.glitch(23.0) is not None
    assert policy.calm_needed_s == 10.0


def test_a_rejected_step_leaves_the_device_as_it_was():
    policy = DeviceLatency(MICROPHONE_LADDER_S, calm_s=5.0)
    up = policy.glitch(1.0)
    assert up is not None
    policy.rejected(up)
    assert policy.current_s == MICROPHONE_LADDER_S[0]
    policy.glitch(3.0)
    down = policy.calm(9.0, quiet=True)
    assert down is not None and down.to_s == MICROPHONE_LADDER_S[0]
    policy.rejected(down)
    assert policy.current_s == MICROPHONE_LADDER_S[1]
    # A rejected step down is no evidence against the lower rung.
    policy.glitch(9.5)
    assert policy.calm_needed_s == 5.0


@pytest.mark.parametrize(
    ("ladder", "kwargs"),
    [
        ((), {}),
        ((0.1, 0.04), {}),
        ((0.04, 0.04), {}),
        ((0.0, 0.04), {}),
        ((0.04,), {"calm_s": 0.0}),
        ((0.04,), {"calm_s": 100.0, "max_calm_s": 50.0}),
        ((0.04,), {"settle_s": -1.0}),
    ],
)
def test_a_bad_ladder_or_period_is_refused(ladder, kwargs):
    with pytest.raises(ValueError):
        DeviceLatency(ladder, **kwargs)
