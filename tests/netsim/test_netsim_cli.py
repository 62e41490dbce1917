"""quicmeet-netsim: bad input exits 2 with a clear message; good input relays."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from netsim.cli import describe, main
from netsim.config import GilbertElliott, LinkConfig

REPO = Path(__file__).resolve().parents[2]
ADDRESSES = ["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9"]


@pytest.mark.parametrize(
    ("flags", "fragments"),
    [
        (["--loss", "120%"], ["--loss: '120%' is above 100%", "0% to 100%"]),
        (["--loss", "2"], ["--loss", "no unit", "such as 2%"]),
        (["--rate", "-1"], ["--rate", "negative", "mbit"]),
        (["--rate", "5mbps"], ["--rate", "unknown unit 'mbps'"]),
        (["--delay", "40"], ["--delay", "no unit", "40ms"]),
        (["--jitter", "10ms,150%"], ["--jitter correlation", "above 100%"]),
        (["--queue", "300"], ["--queue", "not a queue limit", "300ms"]),
        (["--ge", "1%,2%,3%,4%,5%"], ["--ge", "more than four parts"]),
        (["--loss", "1%", "--ge", "1%"], ["both loss and ge"]),
        (["--reorder", "5%"], ["reorder", "needs a delay"]),
        (["--stats-every", "often"], ["--stats-every", "40ms"]),
        (["--duration", "0"], ["--duration", "stop at once"]),
        (["--scenario", "rfc9999"], ["no scenario named 'rfc9999'", "rfc8867-5.1"]),
        (["--trace", "/nonexistent.trace"], ["--trace", "cannot read"]),
    ],
)
def test_bad_parameters_exit_2_naming_the_flag(
    flags: list[str], fragments: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*ADDRESSES, *flags]) == 2
    error = capsys.readouterr().err
    assert error.startswith("quicmeet-netsim: error: ")
    assert "accepted: " in error
    for fragment in fragments:
        assert fragment in error


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--listen", "5000", "--upstream", "127.0.0.1:4433"], "--listen: '5000'"),
        (["--listen", "127.0.0.1:99999", "--upstream", "x:1"], "--listen"),
        (["--listen", "127.0.0.1:5000"], "--upstream: missing"),
    ],
)
def test_bad_addresses(
    flags: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(flags) == 2
    error = capsys.readouterr().err
    assert fragment in error and "HOST:PORT" in error


def test_unknown_flag_and_distribution_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([*ADDRESSES, "--bandwidth", "1mbit"]) == 2
    assert "unrecognized arguments: --bandwidth" in capsys.readouterr().err
    assert main([*ADDRESSES, "--distribution", "cauchy"]) == 2
    assert "--distribution" in capsys.readouterr().err


def test_trace_with_time_going_backwards(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "bad.trace"
    trace.write_text("1\n2\n1\n")
    assert main([*ADDRESSES, "--trace", str(trace)]) == 2
    error = capsys.readouterr().err
    assert "line 3" in error and "1 ms comes after 2 ms" in error


def test_scenario_naming_an_unknown_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "bad.toml"
    scenario.write_text('description = "x"\n[link]\nbandwidth = "1mbit"\n')
    assert main([*ADDRESSES, "--scenario", str(scenario)]) == 2
    error = capsys.readouterr().err
    assert "bad: [link] bandwidth: unknown parameter" in error
    assert "one of delay, jitter" in error


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    output = capsys.readouterr().out
    assert "--loss PERCENT[,CORR]" in output and "such as 2%" in output


def test_list_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-scenarios"]) == 0
    output = capsys.readouterr().out
    assert "rfc8867-5.1: RFC 8867 section 5.1" in output
    assert output.count("\n") == 7


def test_runs_and_prints_json_statistics(capsys: pytest.CaptureFixture[str]) -> None:
    flags = ["--scenario", "rfc8868-loss-5", "--delay", "10ms", "--seed", "3"]
    timing = ["--duration", "0.35s", "--stats-every", "0.1s", "--stats-format", "json"]
    assert main([*ADDRESSES, *flags, *timing]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    start, *reports, final = records
    assert start["event"] == "start"
    assert start["up"] == "delay 10ms, loss 5%, rate 2mbit, queue 300ms"
    assert start["seed"] == 3
    assert [r["event"] for r in reports] == ["stats"] * 3
    assert final["event"] == "final"
    assert final["up"]["packets_in"] == 0 and final["clients"] == 0


def test_runs_and_prints_text_statistics(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*ADDRESSES, "--duration", "0.05s", "--stats-every", "0"]) == 0
    output = capsys.readouterr().out
    assert output.startswith("quicmeet-netsim: relaying 127.0.0.1:")
    assert "up:   queue 1000pkt" in output
    assert "clients 0" in output


def test_describe_summarises_what_is_set() -> None:
    config = LinkConfig(
        delay_s=0.04,
        jitter_s=0.01,
        jitter_correlation=0.25,
        keep_order=False,
        gilbert_elliott=GilbertElliott(0.01, 0.25),
        rate_bps=1.5e6,
        queue_packets=None,
        queue_bytes=65536,
    )
    assert describe(config) == (
        "delay 40ms, jitter 10ms,25% uniform (reorders), "
        "ge 1%,25%,100%,0% (~3.85% loss), rate 1.5mbit, queue 64kb"
    )


def test_module_entry_point_in_a_subprocess() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "netsim", *ADDRESSES, "--loss", "120%"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--loss: '120%' is above 100%" in done.stderr
