"""Traces and scenarios: loading, refusing bad input, and what they do to a link."""

from __future__ import annotations

from pathlib import Path

import pytest

from netsim import (
    Link,
    ParameterError,
    Trace,
    load_scenario,
    parse_scenario,
    scenario_names,
)

SHIPPED = [
    "capacity-rise",
    "long-distance",
    "mobile-handover",
    "rfc8867-5.1",
    "rfc8867-5.6",
    "rfc8868-loss-5",
    "wifi-lossy",
]


def test_trace_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "cell.trace"
    path.write_text("1\n1\n\n3\n7\n")
    trace = Trace.load(path)
    assert trace.opportunities_ms == (1, 1, 3, 7)
    assert trace.period_ms == 7
    assert trace.mean_rate_bps == pytest.approx(4 * 1500 * 8 / 0.007)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("1\n5\n3\n", ["line 3", "3 ms comes after 5 ms", "non-decreasing"]),
        ("1\nfast\n", ["line 2", "'fast' is not a whole number"]),
        ("1.5\n", ["line 1", "not a whole number"]),
        ("-1\n", ["line 1"]),
        ("", ["no timestamps"]),
        ("0\n0\n", ["last timestamp is 0"]),
    ],
)
def test_malformed_traces_are_refused(text: str, fragments: list[str]) -> None:
    with pytest.raises(ParameterError) as raised:
        Trace.parse(text, "bad.trace")
    message = str(raised.value)
    assert "trace bad.trace" in message
    assert "Mahimahi trace" in message
    for fragment in fragments:
        assert fragment in message


def test_every_shipped_scenario_loads() -> None:
    assert scenario_names() == SHIPPED
    for name in SHIPPED:
        scenario = load_scenario(name)
        assert scenario.name == name
        assert scenario.description
        assert scenario.duration_s is not None and scenario.duration_s > 0
        Link(scenario.up, schedule=scenario.up_schedule)
        Link(scenario.down, schedule=scenario.down_schedule)


def test_rfc8867_capacity_steps() -> None:
    scenario = load_scenario("rfc8867-5.1")
    assert scenario.up.delay_s == pytest.approx(0.05)
    assert scenario.up.queue_delay_s == pytest.approx(0.3)
    steps = [(step.at_s, step.changes["rate_bps"]) for step in scenario.up_schedule]
    assert [(0.0, scenario.up.rate_bps), *steps] == [
        (0.0, 1e6),
        (40.0, 2.5e6),
        (60.0, 0.6e6),
        (80.0, 1e6),
    ]


def test_rfc8867_link_delivers_each_step_rate() -> None:
    # Keep the bottleneck busy with 1200-byte packets at 3 Mbit/s and measure what
    # comes out in each capacity step.
    scenario = load_scenario("rfc8867-5.1")
    link: Link[bytes] = Link(scenario.up, schedule=scenario.up_schedule)
    size, spacing_s = 1200, 1200 * 8 / 3e6
    received_bytes = {0: 0, 1: 0, 2: 0, 3: 0}
    boundaries = (40.0, 60.0, 80.0)
    worst_delay_s = 0.0
    sequence = 0
    while (now := sequence * spacing_s) < 100.0:
        while (wakeup := link.next_wakeup()) is not None and wakeup <= now:
            for data in link.receive(wakeup):
                received_bytes[sum(wakeup >= b for b in boundaries)] += len(data)
                sent_at = int.from_bytes(data[:4], "big") * spacing_s
                # A capacity drop leaves the packets already queued to drain at
                # the new rate; look at packets sent once that has settled.
                if not any(b - 0.5 <= sent_at < b + 2 for b in boundaries):
                    worst_delay_s = max(worst_delay_s, wakeup - sent_at)
        link.send(sequence.to_bytes(4, "big") + bytes(size - 4), now)
        sequence += 1
    rates = [
        received_bytes[0] * 8 / 40,
        received_bytes[1] * 8 / 20,
        received_bytes[2] * 8 / 20,
        received_bytes[3] * 8 / 20,
    ]
    for measured, expected in zip(rates, (1e6, 2.5e6, 0.6e6, 1e6), strict=True):
        assert measured == pytest.approx(expected, rel=0.03)
    # Delay: 50 ms, plus at most 300 ms of queue and one packet's serialization.
    assert 0.3 < worst_delay_s <= 0.05 + 0.3 + size * 8 / 0.6e6


def test_handover_blackhole_lasts_two_seconds() -> None:
    scenario = load_scenario("mobile-handover")
    link: Link[bytes] = Link(scenario.down, schedule=scenario.down_schedule, seed=1)
    lost_at = []
    for tick in range(3000):  # one small packet every 10 ms for 30 s
        now = tick * 0.01
        before = link.stats.dropped_blackhole
        link.send(bytes(100), now)
        link.receive(now)
        if link.stats.dropped_blackhole > before:
            lost_at.append(now)
    assert lost_at[0] == pytest.approx(10.0)
    assert lost_at[-1] == pytest.approx(11.99)
    assert len(lost_at) == 200
    assert link.config.delay_s == pytest.approx(0.06)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "custom.toml"
    path.write_text(text)
    return path


def test_scenario_file_with_directions_and_trace(tmp_path: Path) -> None:
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "up.trace").write_text("1\n2\n")
    path = write(
        tmp_path,
        """
        description = "asymmetric"
        [link]
        delay = "20ms"
        [up]
        trace = "traces/up.trace"
        [down]
        rate = "10mbit"
        loss = "1%"
        [[schedule]]
        at = "5s"
        direction = "down"
        ge = "1%,25%"
        """,
    )
    scenario = load_scenario(path)
    assert scenario.up.trace is not None and scenario.up.rate_bps is None
    assert scenario.down.rate_bps == pytest.approx(1e7)
    assert scenario.up_schedule == ()
    (step,) = scenario.down_schedule
    assert step.changes["loss"] == 0 and step.changes["gilbert_elliott"] is not None
    assert scenario.duration_s is None


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            'description = "x"\nspeed = "fast"\n',
            ["custom: speed", "unknown field", "description, duration, link"],
        ),
        (
            'description = "x"\n[link]\nlatency = "40ms"\n',
            ["custom: [link] latency", "unknown parameter", "delay, jitter"],
        ),
        (
            'description = "x"\n[[schedule]]\nat = "1s"\nbandwidth = "1mbit"\n',
            ["custom: schedule[0] bandwidth", "unknown parameter"],
        ),
        ('description = "x"\n[link]\nloss = "120%"\n', ["[link] loss", "0% to 100%"]),
        ('description = "x"\n[link]\ndelay = 40\n', ["[link] delay", "40ms"]),
        ("[link]\n", ["description", "missing"]),
        ('description = "x"\n[[schedule]]\nrate = "1mbit"\n', ["schedule[0] at"]),
        ('description = "x"\n[[schedule]]\nat = "1s"\n', ["changes nothing"]),
        (
            'description = "x"\n[[schedule]]\nat = "1s"\ndirection = "sideways"\n'
            'loss = "1%"\n',
            ["direction", "up or down or both"],
        ),
        (
            'description = "x"\n[[schedule]]\nat = "1s"\nreorder = "5%"\n',
            ["schedule step at 1s: reorder", "delay"],
        ),
        ('description = "x"\n[link\n', ["not valid TOML"]),
    ],
)
def test_bad_scenarios_are_refused(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    with pytest.raises(ParameterError) as raised:
        load_scenario(write(tmp_path, text))
    message = str(raised.value)
    assert "accepted: " in message
    for fragment in fragments:
        assert fragment in message


def test_unknown_scenario_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ParameterError, match="rfc8867-5.1"):
        load_scenario("rfc9999")


def test_parse_scenario_from_text() -> None:
    scenario = parse_scenario('description = "d"\n[link]\ndelay = "1ms"', "inline")
    assert scenario.up.delay_s == scenario.down.delay_s == pytest.approx(0.001)
