"""Parse and format the quantities netsim takes on its command line and in scenarios.

Every quantity is written with its unit, as ``tc netem`` writes them, so that a value
can never be misread: ``40ms``, ``1.5mbit``, ``2%``, ``64kb``. Inside netsim the same
quantities are plain numbers in base units: seconds, bits per second, bytes, and
probabilities from 0 to 1.

Units are case-insensitive. Rates are decimal (``1kbit`` is 1,000 bit/s); sizes are
binary as in ``tc`` (``1kb`` is 1,024 bytes).
"""

from __future__ import annotations

import math
import re

from .errors import ParameterError

__all__ = [
    "DURATION_FORM",
    "PERCENT_FORM",
    "RATE_FORM",
    "SIZE_FORM",
    "format_duration",
    "format_percent",
    "format_rate",
    "format_size",
    "parse_duration",
    "parse_percent",
    "parse_rate",
    "parse_size",
]

DURATION_FORM = "a duration with a unit (us, ms or s), such as 40ms, 1.5s or 500us"
RATE_FORM = (
    "a rate in bits per second with a unit (bit, kbit, mbit or gbit), "
    "such as 1.5mbit or 800kbit"
)
SIZE_FORM = "a size with a unit (b, kb or mb; 1kb = 1024 bytes), such as 64kb"
PERCENT_FORM = "a percentage from 0% to 100%, such as 2% or 0.5%"

_DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
_RATE_UNITS = {"bit": 1.0, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9}
_SIZE_UNITS = {"b": 1, "kb": 1024, "mb": 1024 * 1024}

_QUANTITY = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?)\s*(.*)")


def _split(text: object, parameter: str, accepted: str) -> tuple[float, str]:
    """Split ``text`` into a finite number and its lower-cased unit."""
    if not isinstance(text, str):
        raise ParameterError(parameter, f"{text!r} is not text", accepted)
    match = _QUANTITY.fullmatch(text.strip().lower())
    if match is None:
        raise ParameterError(
            parameter, f"{text!r} is not a number with a unit", accepted
        )
    value = float(match.group(1))
    if not math.isfinite(value):
        raise ParameterError(parameter, f"{text!r} is not a finite number", accepted)
    if value < 0:
        raise ParameterError(parameter, f"{text!r} is negative", accepted)
    return value, match.group(2).strip()


def _unknown_unit(
    text: str, unit: str, parameter: str, accepted: str
) -> ParameterError:
    if not unit:
        return ParameterError(parameter, f"{text!r} has no unit", accepted)
    return ParameterError(parameter, f"unknown unit {unit!r} in {text!r}", accepted)


def parse_duration(text: str, parameter: str) -> float:
    """Parse a duration such as ``40ms`` into seconds (zero allowed)."""
    value, unit = _split(text, parameter, DURATION_FORM)
    if unit not in _DURATION_UNITS:
        if value == 0 and not unit:
            return 0.0
        raise _unknown_unit(text, unit, parameter, DURATION_FORM)
    return value * _DURATION_UNITS[unit]


def parse_rate(text: str, parameter: str) -> float:
    """Parse a rate such as ``1.5mbit`` (or ``1.5mbit/s``) into bits per second.

    Zero is refused: a link with no capacity is a blackhole, which has its own
    parameter.
    """
    value, unit = _split(text, parameter, RATE_FORM)
    unit = unit.removesuffix("/s")
    if unit not in _RATE_UNITS:
        raise _unknown_unit(text, unit, parameter, RATE_FORM)
    if value == 0:
        raise ParameterError(parameter, f"{text!r} is zero", RATE_FORM)
    return value * _RATE_UNITS[unit]


def parse_size(text: str, parameter: str) -> int:
    """Parse a size such as ``64kb`` into a whole, positive number of bytes."""
    value, unit = _split(text, parameter, SIZE_FORM)
    if unit not in _SIZE_UNITS:
        raise _unknown_unit(text, unit, parameter, SIZE_FORM)
    size = round(value * _SIZE_UNITS[unit])
    if size < 1:
        raise ParameterError(parameter, f"{text!r} is less than one byte", SIZE_FORM)
    return size


def parse_percent(text: str, parameter: str) -> float:
    """Parse a percentage such as ``2%`` into a probability from 0 to 1.

    The ``%`` sign is required, so that ``2`` is never mistaken for 200%.
    """
    value, unit = _split(text, parameter, PERCENT_FORM)
    if unit != "%":
        raise _unknown_unit(text, unit, parameter, PERCENT_FORM)
    if value > 100:
        raise ParameterError(parameter, f"{text!r} is above 100%", PERCENT_FORM)
    return value / 100


def _trim(value: float) -> str:
    return f"{value:.6g}"


def format_duration(seconds: float) -> str:
    """Format seconds in the unit that reads best: ``40ms``, ``1.5s``, ``250us``."""
    if seconds == 0:
        return "0ms"
    if seconds < 1e-3:
        return f"{_trim(seconds * 1e6)}us"
    if seconds < 1:
        return f"{_trim(seconds * 1e3)}ms"
    return f"{_trim(seconds)}s"


def format_rate(bits_per_second: float) -> str:
    """Format bits per second as ``1.5mbit``, ``800kbit`` and so on."""
    for unit, scale in (("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3)):
        if bits_per_second >= scale:
            return f"{_trim(bits_per_second / scale)}{unit}"
    return f"{_trim(bits_per_second)}bit"


def format_size(size_bytes: int) -> str:
    """Format a size in bytes as ``64kb``, ``1.5mb`` or ``512b``."""
    for unit, scale in (("mb", 1024 * 1024), ("kb", 1024)):
        if size_bytes >= scale:
            return f"{_trim(size_bytes / scale)}{unit}"
    return f"{size_bytes}b"


def format_percent(probability: float) -> str:
    """Format a probability from 0 to 1 as a percentage: ``2%``, ``0.1%``."""
    return f"{_trim(probability * 100)}%"
