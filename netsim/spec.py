"""The written form of link parameters, shared by the command line and scenarios.

A *spec* is a mapping from a short name to a value written with units, exactly as
the ``quicmeet-netsim`` flags take them (``delay = "40ms"`` in a scenario is
``--delay 40ms`` on the command line). ``parse_spec`` turns one into ``LinkConfig``
field values. Setting one loss model clears the other (``loss`` and ``ge``), and
likewise for the two capacities (``rate`` and ``trace``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .config import DISTRIBUTIONS, GilbertElliott
from .errors import ParameterError
from .trace import Trace
from .units import (
    DURATION_FORM,
    PERCENT_FORM,
    RATE_FORM,
    parse_duration,
    parse_percent,
    parse_rate,
    parse_size,
)

__all__ = ["SPEC_FORMS", "parse_spec"]

_CORRELATED = "{}; a correlation may follow a comma, as in {}"
_GE_FORM = (
    "p[,r[,1-h[,1-k]]] as percentages, such as 1%,30%,100%,0% "
    "(defaults: r = 100% - p, 1-h = 100%, 1-k = 0%)"
)
_QUEUE_FORM = (
    "one or more limits separated by commas: a duration (300ms), "
    "a size (64kb) or a packet count (100pkt)"
)

SPEC_FORMS: dict[str, str] = {
    "delay": DURATION_FORM,
    "jitter": _CORRELATED.format(DURATION_FORM, "10ms,25%"),
    "distribution": " or ".join(DISTRIBUTIONS),
    "jitter-reorders": "true or false",
    "loss": _CORRELATED.format(PERCENT_FORM, "2%,25%"),
    "ge": _GE_FORM,
    "rate": RATE_FORM + ", or unlimited",
    "queue": _QUEUE_FORM,
    "reorder": _CORRELATED.format(PERCENT_FORM, "1%,50%"),
    "duplicate": _CORRELATED.format(PERCENT_FORM, "0.1%,25%"),
    "trace": "the path of a Mahimahi trace file",
    "blackhole": "true or false",
}
"""Every spec name and the form its value takes."""


def _text(value: object, label: str, accepted: str) -> str:
    if not isinstance(value, str):
        raise ParameterError(
            label, f"{value!r} is not text; write the value with its unit", accepted
        )
    return value


def _flag(value: object, label: str) -> bool:
    if not isinstance(value, bool):
        raise ParameterError(label, f"{value!r} is not true or false", "true or false")
    return value


def _with_correlation(
    value: object, label: str, parse: Callable[[str, str], float], accepted: str
) -> tuple[float, float]:
    parts = _text(value, label, accepted).split(",")
    if len(parts) > 2:
        raise ParameterError(label, f"{value!r} has more than two parts", accepted)
    amount = parse(parts[0], label)
    correlation = (
        parse_percent(parts[1], f"{label} correlation") if len(parts) == 2 else 0.0
    )
    return amount, correlation


def _gilbert_elliott(value: object, label: str) -> GilbertElliott:
    parts = _text(value, label, _GE_FORM).split(",")
    if len(parts) > 4:
        raise ParameterError(label, f"{value!r} has more than four parts", _GE_FORM)
    names = ("p", "r", "1-h", "1-k")[: len(parts)]
    numbers = [
        parse_percent(part, f"{label} {name}")
        for name, part in zip(names, parts, strict=True)
    ]
    p = numbers[0]
    r = numbers[1] if len(numbers) > 1 else 1.0 - p
    one_minus_h = numbers[2] if len(numbers) > 2 else 1.0
    one_minus_k = numbers[3] if len(numbers) > 3 else 0.0
    return GilbertElliott(p, r, one_minus_h, one_minus_k)


def _queue(value: object, label: str) -> dict[str, Any]:
    limits: dict[str, Any] = {
        "queue_packets": None,
        "queue_bytes": None,
        "queue_delay_s": None,
    }
    for part in _text(value, label, _QUEUE_FORM).split(","):
        part = part.strip()
        lowered = part.lower()
        if lowered.endswith("pkt"):
            count = lowered.removesuffix("pkt").strip()
            if not count.isdigit() or int(count) < 1:
                raise ParameterError(
                    label, f"{part!r} is not a whole number of packets", _QUEUE_FORM
                )
            limits["queue_packets"] = int(count)
        elif lowered.endswith("s"):
            seconds = parse_duration(part, label)
            if seconds == 0:
                raise ParameterError(label, f"{part!r} is zero", _QUEUE_FORM)
            limits["queue_delay_s"] = seconds
        elif lowered.endswith("b"):
            limits["queue_bytes"] = parse_size(part, label)
        else:
            raise ParameterError(label, f"{part!r} is not a queue limit", _QUEUE_FORM)
    return limits


def _rate(value: object, label: str) -> float | None:
    text = _text(value, label, SPEC_FORMS["rate"])
    if text.strip().lower() == "unlimited":
        return None
    return parse_rate(text, label)


def parse_spec(
    spec: Mapping[str, object],
    *,
    label: Callable[[str], str] = lambda name: name,
    base_dir: Path | None = None,
) -> dict[str, Any]:
    """Turn a spec into ``LinkConfig`` field values, for ``LinkConfig.replace``.

    ``label`` turns a spec name into the name used in error messages (``--delay``
    on the command line, ``scenario.toml [link] delay`` in a file). Relative trace
    paths are resolved against ``base_dir``.
    """
    changes: dict[str, Any] = {}
    for name, value in spec.items():
        where = label(name)
        if name == "delay":
            changes["delay_s"] = parse_duration(
                _text(value, where, DURATION_FORM), where
            )
        elif name == "jitter":
            jitter, correlation = _with_correlation(
                value, where, parse_duration, SPEC_FORMS[name]
            )
            changes.update(jitter_s=jitter, jitter_correlation=correlation)
        elif name == "distribution":
            if value not in DISTRIBUTIONS:
                raise ParameterError(
                    where, f"unknown distribution {value!r}", SPEC_FORMS[name]
                )
            changes["jitter_distribution"] = value
        elif name == "jitter-reorders":
            changes["keep_order"] = not _flag(value, where)
        elif name == "loss":
            loss, correlation = _with_correlation(
                value, where, parse_percent, SPEC_FORMS[name]
            )
            changes.update(
                loss=loss, loss_correlation=correlation, gilbert_elliott=None
            )
        elif name == "ge":
            changes.update(
                gilbert_elliott=_gilbert_elliott(value, where),
                loss=0.0,
                loss_correlation=0.0,
            )
        elif name == "rate":
            changes.update(rate_bps=_rate(value, where), trace=None)
        elif name == "trace":
            path = Path(_text(value, where, SPEC_FORMS[name]))
            if base_dir is not None and not path.is_absolute():
                path = base_dir / path
            try:
                trace = Trace.load(path)
            except OSError as error:
                raise ParameterError(
                    where, f"cannot read {path}: {error.strerror}", SPEC_FORMS[name]
                ) from None
            changes.update(trace=trace, rate_bps=None)
        elif name == "queue":
            changes.update(_queue(value, where))
        elif name == "reorder":
            reorder, correlation = _with_correlation(
                value, where, parse_percent, SPEC_FORMS[name]
            )
            changes.update(reorder=reorder, reorder_correlation=correlation)
        elif name == "duplicate":
            duplicate, correlation = _with_correlation(
                value, where, parse_percent, SPEC_FORMS[name]
            )
            changes.update(duplicate=duplicate, duplicate_correlation=correlation)
        elif name == "blackhole":
            changes["blackhole"] = _flag(value, where)
        else:
            raise ParameterError(
                where, "unknown parameter", "one of " + ", ".join(SPEC_FORMS)
            )
    if "loss" in spec and "ge" in spec:
        raise ParameterError(
            label("ge"), "both loss and ge are given", "one loss model: loss or ge"
        )
    if "rate" in spec and "trace" in spec:
        raise ParameterError(
            label("trace"),
            "both rate and trace are given",
            "one capacity: rate or trace",
        )
    return changes
