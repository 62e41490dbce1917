"""The talker's FEC policy on a virtual clock: the worst listener's loss,
risen at once, fallen slowly, between a floor and a ceiling; and the
listener's per-period loss share."""

from __future__ import annotations

import pytest

from codec.media.audio import (
    DEFAULT_BITRATE_BPS,
    FecPolicy,
    LossCounter,
    LossReportGate,
)


def test_fec_starts_at_the_floor_and_follows_the_worst_listener_at_once():
    policy = FecPolicy(floor_pct=1.0, ceiling_pct=25.0)
    assert policy.setting(0.0).expected_loss_pct == 1
    assert policy.setting(0.0).bitrate_bps == DEFAULT_BITRATE_BPS
    policy.report("ann", 0.01, 1.0)
    policy.report("bob", 0.08, 1.0)
    assert policy.setting(1.0).expected_loss_pct == 8
    policy.report("ann", 0.0, 2.0)  # ann is clean: bob is still the worst
    assert policy.setting(2.0).expected_loss_pct == 8


def test_fec_falls_slowly_after_the_loss_ends_and_settles_at_the_floor():
    policy = FecPolicy(floor_pct=2.0, fall_half_life_s=8.0)
    policy.report("bob", 0.20, 0.0)
    levels = []
    for second in range(1, 61):
        policy.report("bob", 0.0, float(second))
        levels.append(policy.setting(float(second)).expected_loss_pct)
    # Half the excess over the floor is gone after one half-life, not before.
    assert levels[3] >= 14  # 4 s: 2 + 18 * 0.71
    assert 9 <= levels[7] <= 12  # 8 s: 2 + 18 / 2
    assert levels == sorted(levels, reverse=True)
    assert levels[-1] == 2


def test_fec_stays_below_the_ceiling_and_forgets_silent_listeners():
    policy = FecPolicy(ceiling_pct=25.0, stale_s=6.0)
    assert policy.listeners == set()
    policy.report("bob", 0.9, 0.0)
    assert policy.setting(0.0).expected_loss_pct == 25
    # bob stops reporting (left, or his reports are lost): after stale_s his
    # loss no longer holds the level up, which then falls.
    assert policy.setting(5.0).expected_loss_pct == 25
    assert policy.setting(30.0).expected_loss_pct < 10
    policy.report("cid", 0.3, 31.0)
    assert policy.listeners == {"cid"}
    policy.forget("cid")
    assert policy.setting(90.0).expected_loss_pct == 1


def test_fec_raises_the_bitrate_with_the_loss():
    policy = FecPolicy(
        base_bitrate_bps=32_000,
        max_bitrate_bps=48_000,
        boost_from_pct=3.0,
        boost_full_pct=10.0,
    )
    policy.report("bob", 0.03, 0.0)
    assert policy.setting(0.0).bitrate_bps == 32_000
    policy.report("bob", 0.065, 0.0)
    assert policy.setting(0.0).bitrate_bps == 40_000
    policy.report("bob", 0.5, 0.0)
    assert policy.setting(0.0).bitrate_bps == 48_000


def test_fec_policy_refuses_bad_input():
    policy = FecPolicy()
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="0..1"):
            policy.report("bob", bad, 0.0)
    assert policy.setting(0.0).expected_loss_pct == 1  # nothing was taken
    with pytest.raises(ValueError, match="floor"):
        FecPolicy(floor_pct=30.0, ceiling_pct=10.0)
    with pytest.raises(ValueError, match="boost"):
        FecPolicy(boost_from_pct=10.0, boost_full_pct=5.0)


def test_loss_counter_reports_the_share_of_each_period():
    counter = LossCounter(min_frames=25)
    assert counter.period(lost=0, expected=50) == 0.0
    assert counter.period(lost=5, expected=150) == pytest.approx(0.05)
    # A pause: two keep-alives, one lost, is no period yet; it adds to the next.
    assert counter.period(lost=6, expected=152) is None
    assert counter.period(lost=8, expected=190) == pytest.approx(0.075)


def test_unchanged_loss_is_reported_once_per_refresh_not_every_period():
    gate = LossReportGate(rise=0.01, refresh_s=10.0)
    sent = [now for now in range(0, 60, 2) if gate.due(0.0, float(now))]
    # A clean link: the first period, then every 10 s (the talker's policy
    # forgets a listener after 20 s without a report).
    assert sent == [0, 10, 20, 30, 40, 50]
    assert gate.held == 24


def test_a_loss_that_rises_goes_out_at_once_and_a_clear_fall_too():
    gate = LossReportGate(rise=0.01, refresh_s=10.0)
    shares = [0.0, 0.005, 0.02, 0.025, 0.06, 0.05, 0.035, 0.029, 0.01, 0.0]
    sent = [s for t, s in enumerate(shares) if gate.due(s, t * 2.0)]
    # 0.005 is noise; 0.02 and 0.06 rose; 0.05 and 0.035 are a slow fall the
    # policy would take slowly anyway; 0.029 is half of 0.06 or less, and
    # 0.0 half of 0.01.
    assert sent == [0.0, 0.02, 0.06, 0.029, 0.01, 0.0]


def test_a_bad_report_gate_is_refused():
    with pytest.raises(ValueError):
        LossReportGate(rise=0.0)
    with pytest.raises(ValueError):
        LossReportGate(refresh_s=0.0)
