"""Units, specs and configuration: what is accepted, and what is refused and how."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netsim import GilbertElliott, LinkConfig, ParameterError, ScheduleStep, parse_spec
from netsim.units import (
    format_duration,
    format_percent,
    format_rate,
    format_size,
    parse_duration,
    parse_percent,
    parse_rate,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("40ms", 0.04), ("1.5s", 1.5), ("500us", 0.0005), ("0", 0.0), (" 2 MS ", 0.002)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "--delay") == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "bps"),
    [("1.5mbit", 1.5e6), ("800kbit", 8e5), ("1gbit", 1e9), ("2.5Mbit/s", 2.5e6)],
)
def test_rates(text: str, bps: float) -> None:
    assert parse_rate(text, "--rate") == pytest.approx(bps)


def test_sizes_are_binary_as_in_tc() -> None:
    assert parse_size("64kb", "--queue") == 65536
    assert parse_size("1mb", "--queue") == 1048576
    assert parse_size("1500b", "--queue") == 1500


def test_percentages() -> None:
    assert parse_percent("2%", "--loss") == pytest.approx(0.02)
    assert parse_percent("0.1%", "--loss") == pytest.approx(0.001)
    assert parse_percent("100%", "--loss") == 1.0


@pytest.mark.parametrize(
    ("parse", "text", "fragments"),
    [
        (parse_percent, "120%", ["--x", "above 100%", "0% to 100%"]),
        (parse_percent, "2", ["--x", "no unit", "2%"]),
        (parse_percent, "-1%", ["--x", "negative"]),
        (parse_rate, "-1", ["--x", "negative", "mbit"]),
        (parse_rate, "0mbit", ["--x", "zero"]),
        (parse_rate, "5mbps", ["--x", "unknown unit 'mbps'", "kbit"]),
        (parse_duration, "40", ["--x", "no unit", "40ms"]),
        (parse_duration, "40 minutes", ["unknown unit 'minutes'"]),
        (parse_duration, "fast", ["not a number with a unit"]),
        (parse_duration, "nan", ["not a number with a unit"]),
        (parse_size, "64kbit", ["unknown unit 'kbit'", "64kb"]),
    ],
)
def test_malformed_quantities_name_the_parameter_and_the_form(
    parse: object, text: str, fragments: list[str]
) -> None:
    with pytest.raises(ParameterError) as raised:
        parse(text, "--x")  # type: ignore[operator]
    message = str(raised.value)
    assert message.startswith("--x: ")
    assert "accepted: " in message
    for fragment in fragments:
        assert fragment in message


@given(st.floats(min_value=1e-6, max_value=1e4))
def test_durations_round_trip(seconds: float) -> None:
    parsed = parse_duration(format_duration(seconds), "d")
    assert parsed == pytest.approx(seconds, rel=1e-5)


@given(st.floats(min_value=1, max_value=1e11))
def test_rates_round_trip(bps: float) -> None:
    assert parse_rate(format_rate(bps), "r") == pytest.approx(bps, rel=1e-5)


@given(st.integers(min_value=1, max_value=2**40))
def test_sizes_round_trip(size: int) -> None:
    assert parse_size(format_size(size), "s") == pytest.approx(size, rel=1e-5)


@given(st.floats(min_value=0, max_value=1))
def test_percentages_round_trip(probability: float) -> None:
    parsed = parse_percent(format_percent(probability), "p")
    assert parsed == pytest.approx(probability, rel=1e-5, abs=1e-12)


def test_spec_covers_every_stage() -> None:
    changes = parse_spec(
        {
            "delay": "40ms",
            "jitter": "10ms,25%",
            "distribution": "pareto",
            "jitter-reorders": True,
            "ge": "1%,30%",
            "rate": "1.5mbit",
            "queue": "300ms,64kb,50pkt",
            "reorder": "1%",
            "duplicate": "0.1%,5%",
        }
    )
    config = LinkConfig().replace(**changes)
    assert config.delay_s == pytest.approx(0.04)
    assert config.jitter_s == pytest.approx(0.01)
    assert config.jitter_correlation == pytest.approx(0.25)
    assert config.jitter_distribution == "pareto"
    assert config.keep_order is False
    assert config.gilbert_elliott == GilbertElliott(0.01, 0.3, 1.0, 0.0)
    assert config.loss == 0
    assert config.rate_bps == pytest.approx(1.5e6)
    assert config.queue_delay_s == pytest.approx(0.3)
    assert config.queue_bytes == 65536
    assert config.queue_packets == 50
    assert config.reorder == pytest.approx(0.01)
    assert config.duplicate == pytest.approx(0.001)
    assert config.duplicate_correlation == pytest.approx(0.05)


def test_spec_ge_defaults_follow_tc() -> None:
    ge = parse_spec({"ge": "2%"})["gilbert_elliott"]
    assert ge == GilbertElliott(p=0.02, r=0.98, one_minus_h=1.0, one_minus_k=0.0)
    assert ge.loss_rate == pytest.approx(0.02)


def test_spec_queue_replaces_the_default_packet_limit() -> None:
    config = LinkConfig().replace(**parse_spec({"queue": "300ms"}))
    assert (config.queue_packets, config.queue_bytes) == (None, None)


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        ({"ge": "1%,2%,3%,4%,5%"}, ["ge", "more than four parts", "p[,r[,1-h[,1-k]]]"]),
        ({"ge": "1%,200%"}, ["ge r", "above 100%"]),
        ({"queue": "300"}, ["queue", "not a queue limit", "100pkt"]),
        ({"queue": "0pkt"}, ["queue", "whole number of packets"]),
        ({"distribution": "cauchy"}, ["distribution", "uniform or normal or pareto"]),
        ({"loss": "1%", "ge": "1%"}, ["both loss and ge"]),
        ({"rate": "1mbit", "trace": "x"}, ["trace"]),
        ({"delay": 40}, ["delay", "not text", "40ms"]),
        ({"colour": "red"}, ["colour", "unknown parameter", "delay, jitter"]),
        ({"blackhole": "yes"}, ["blackhole", "true or false"]),
        ({"trace": "/nonexistent/trace"}, ["trace", "cannot read"]),
    ],
)
def test_bad_specs(spec: dict[str, object], fragments: list[str]) -> None:
    with pytest.raises(ParameterError) as raised:
        parse_spec(spec)
    for fragment in fragments:
        assert fragment in str(raised.value)


@pytest.mark.parametrize(
    ("changes", "parameter"),
    [
        ({"loss": 1.2}, "loss"),
        ({"loss": math.nan}, "loss"),
        ({"delay_s": -0.1}, "delay_s"),
        ({"rate_bps": 0}, "rate_bps"),
        ({"rate_bps": -1.0}, "rate_bps"),
        ({"queue_packets": 0}, "queue_packets"),
        ({"queue_bytes": 1.5}, "queue_bytes"),
        ({"queue_delay_s": 0}, "queue_delay_s"),
        ({"jitter_distribution": "cauchy"}, "jitter_distribution"),
        ({"keep_order": 1}, "keep_order"),
        ({"reorder": 0.1}, "reorder"),
        ({"loss": 0.1, "gilbert_elliott": GilbertElliott(0.1, 0.5)}, "loss"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_link_config_refuses_what_it_cannot_honour(
    changes: dict[str, object], parameter: str
) -> None:
    with pytest.raises(ParameterError) as raised:
        LinkConfig().replace(**changes)
    assert raised.value.parameter == parameter


def test_unknown_config_field_lists_the_accepted_ones() -> None:
    with pytest.raises(ParameterError, match="one of delay_s, jitter_s"):
        LinkConfig().replace(colour="red")


def test_schedule_steps_are_checked() -> None:
    with pytest.raises(ParameterError, match="colour"):
        ScheduleStep(1.0, {"colour": "red"})
    with pytest.raises(ParameterError, match="at_s"):
        ScheduleStep(-1.0, {"loss": 0.1})


def test_gilbert_elliott_properties() -> None:
    ge = GilbertElliott(p=0.01, r=0.25)
    assert ge.loss_rate == pytest.approx(0.01 / 0.26)
    assert ge.mean_bad_run_packets == pytest.approx(4.0)
    with pytest.raises(ParameterError, match="gilbert_elliott.r"):
        GilbertElliott(p=0.01, r=1.5)
