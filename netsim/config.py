"""What a link does: the parameters of one direction of an emulated path.

A ``LinkConfig`` holds every parameter of every stage, in base units (seconds, bits
per second, bytes, probabilities from 0 to 1), and refuses values it cannot honour.
It is immutable; ``replace`` gives a changed copy, and a ``ScheduleStep`` says which
parameters change at what time.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, TypeGuard

from .errors import ParameterError
from .trace import Trace

__all__ = [
    "DISTRIBUTIONS",
    "Distribution",
    "GilbertElliott",
    "LinkConfig",
    "ScheduleStep",
    "validate_schedule",
]

Distribution = Literal["uniform", "normal", "pareto"]
DISTRIBUTIONS: tuple[Distribution, ...] = ("uniform", "normal", "pareto")

_PROBABILITY = "a probability from 0 to 1"
_SECONDS = "a number of seconds, 0 or more"


def _is_number(value: object) -> TypeGuard[float]:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _check_probability(name: str, value: object) -> None:
    if not _is_number(value) or not 0 <= value <= 1:
        raise ParameterError(name, f"{value!r} is not a probability", _PROBABILITY)


def _check_seconds(name: str, value: object) -> None:
    if not _is_number(value) or value < 0:
        raise ParameterError(name, f"{value!r} is not a duration", _SECONDS)


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ParameterError(name, f"{value!r} is not a bool", "True or False")


@dataclass(frozen=True)
class GilbertElliott:
    """netem's four-parameter Gilbert-Elliott loss (``loss gemodel p r 1-h 1-k``).

    A two-state Markov chain decides per packet: in the good state a packet is lost
    with probability ``one_minus_k``, in the bad state with ``one_minus_h``. After
    each packet the chain moves good to bad with probability ``p`` and bad to good
    with probability ``r``, so a stay in the bad state lasts ``1/r`` packets on
    average. With the defaults (1-h = 100%, 1-k = 0%) this is the simple Gilbert
    model: loss bursts of mean length ``1/r``.
    """

    p: float
    r: float
    one_minus_h: float = 1.0
    one_minus_k: float = 0.0

    def __post_init__(self) -> None:
        for name in ("p", "r", "one_minus_h", "one_minus_k"):
            _check_probability(f"gilbert_elliott.{name}", getattr(self, name))

    @property
    def loss_rate(self) -> float:
        """The long-run fraction of packets lost."""
        if self.p + self.r == 0:
            return self.one_minus_k
        bad = self.p / (self.p + self.r)
        return bad * self.one_minus_h + (1 - bad) * self.one_minus_k

    @property
    def mean_bad_run_packets(self) -> float:
        """Mean number of consecutive packets sent in the bad state (``1/r``)."""
        return math.inf if self.r == 0 else 1 / self.r


@dataclass(frozen=True)
class LinkConfig:
    """The parameters of one direction of a link, applied in netem's order.

    A packet meets, in turn: the blackhole; duplication; loss (Bernoulli or
    Gilbert-Elliott); the drop-tail bottleneck queue and the capacity that drains it
    (a fixed rate, or a Mahimahi trace); then the delay line (delay, jitter and
    reordering). Parameters at their defaults do nothing; the queue, which matters
    only behind a rate or a trace, holds at most 1000 packets as netem's does.
    """

    delay_s: float = 0.0
    """One-way delay added to every packet, in seconds."""
    jitter_s: float = 0.0
    """Spread of the delay, in seconds: uniform draws fall within delay ± jitter,
    normal ones have this standard deviation, pareto ones this scale (as netem)."""
    jitter_distribution: Distribution = "uniform"
    """Shape of the jitter: ``uniform``, ``normal`` or ``pareto`` (netem's tables)."""
    jitter_correlation: float = 0.0
    """How much each packet's jitter follows the previous packet's, 0 to 1."""
    keep_order: bool = True
    """True: jitter never reorders; a packet waits for those sent before it, as in
    netem with a rate set. False: each packet leaves at its own time, as in netem's
    time-sorted queue, so jitter wider than the packet spacing reorders."""
    loss: float = 0.0
    """Probability that a packet is lost (Bernoulli loss)."""
    loss_correlation: float = 0.0
    """How much each loss decision follows the previous one, 0 to 1."""
    gilbert_elliott: GilbertElliott | None = None
    """Bursty loss instead of ``loss``; the two are exclusive."""
    duplicate: float = 0.0
    """Probability that a packet is sent twice."""
    duplicate_correlation: float = 0.0
    """How much each duplication decision follows the previous one, 0 to 1."""
    reorder: float = 0.0
    """Probability that a packet skips the delay line and overtakes the packets in
    it (netem's ``reorder``; needs a delay)."""
    reorder_correlation: float = 0.0
    """How much each reordering decision follows the previous one, 0 to 1."""
    rate_bps: float | None = None
    """Capacity in bits per second; each packet takes size * 8 / rate to serialize.
    None: no limit."""
    trace: Trace | None = None
    """Capacity from a Mahimahi trace instead of ``rate_bps``; the two are
    exclusive."""
    queue_packets: int | None = 1000
    """Most packets the bottleneck queue holds; an arriving packet beyond it is
    dropped. None: no packet limit."""
    queue_bytes: int | None = None
    """Most bytes the bottleneck queue holds. None: no byte limit."""
    queue_delay_s: float | None = None
    """Longest a packet may expect to wait in the queue, in seconds: an arriving
    packet is dropped when the bytes ahead of it would take longer than this to
    drain at the current rate (a trace's mean rate). Like a router's buffer, it is
    checked on arrival: when the capacity drops, packets already queued drain at
    the new rate and may wait longer. None: no time limit."""
    blackhole: bool = False
    """Drop every packet that arrives (packets already inside still leave)."""

    def __post_init__(self) -> None:
        for name in (
            "jitter_correlation",
            "loss",
            "loss_correlation",
            "duplicate",
            "duplicate_correlation",
            "reorder",
            "reorder_correlation",
        ):
            _check_probability(name, getattr(self, name))
        _check_seconds("delay_s", self.delay_s)
        _check_seconds("jitter_s", self.jitter_s)
        _check_bool("keep_order", self.keep_order)
        _check_bool("blackhole", self.blackhole)
        if self.jitter_distribution not in DISTRIBUTIONS:
            raise ParameterError(
                "jitter_distribution",
                f"unknown distribution {self.jitter_distribution!r}",
                " or ".join(DISTRIBUTIONS),
            )
        if self.gilbert_elliott is not None:
            if not isinstance(self.gilbert_elliott, GilbertElliott):
                raise ParameterError(
                    "gilbert_elliott",
                    f"{self.gilbert_elliott!r} is not a GilbertElliott",
                    "GilbertElliott(p, r, one_minus_h, one_minus_k) or None",
                )
            if self.loss > 0:
                raise ParameterError(
                    "loss",
                    "both Bernoulli loss and Gilbert-Elliott loss are set",
                    "one loss model: loss, or gilbert_elliott with loss=0",
                )
        if self.rate_bps is not None and (
            not _is_number(self.rate_bps) or self.rate_bps <= 0
        ):
            raise ParameterError(
                "rate_bps",
                f"{self.rate_bps!r} is not a rate",
                "bits per second above 0, or None for no limit",
            )
        if self.trace is not None:
            if not isinstance(self.trace, Trace):
                raise ParameterError(
                    "trace", f"{self.trace!r} is not a Trace", "a Trace or None"
                )
            if self.rate_bps is not None:
                raise ParameterError(
                    "rate_bps",
                    "both a rate and a trace are set",
                    "one capacity: rate_bps, or trace with rate_bps=None",
                )
        for name in ("queue_packets", "queue_bytes"):
            limit = getattr(self, name)
            if limit is not None and (
                isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
            ):
                raise ParameterError(
                    name, f"{limit!r} is not a limit", "a whole number above 0, or None"
                )
        if self.queue_delay_s is not None and (
            not _is_number(self.queue_delay_s) or self.queue_delay_s <= 0
        ):
            raise ParameterError(
                "queue_delay_s",
                f"{self.queue_delay_s!r} is not a limit",
                "seconds above 0, or None",
            )
        if self.reorder > 0 and self.delay_s == 0:
            raise ParameterError(
                "reorder",
                "reordering needs a delay for packets to overtake",
                "reorder together with delay_s above 0, as netem requires",
            )

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The names ``replace``, ``Link.update`` and schedules accept."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **changes: Any) -> LinkConfig:
        """A copy with some parameters changed, validated as a whole."""
        _check_field_names(changes)
        return dataclasses.replace(self, **changes)


def _check_field_names(changes: Mapping[str, Any]) -> None:
    """Refuse any name that is not a ``LinkConfig`` field, listing the valid ones."""
    names = LinkConfig.field_names()
    for name in changes:
        if name not in names:
            raise ParameterError(
                name, "unknown link parameter", "one of " + ", ".join(names)
            )


@dataclass(frozen=True)
class ScheduleStep:
    """A change of link parameters at a given time.

    ``at_s`` is in seconds from the link's start; ``changes`` maps ``LinkConfig``
    field names to their new values, for example ``{"rate_bps": 2.5e6}``.
    """

    at_s: float
    changes: Mapping[str, Any]

    def __post_init__(self) -> None:
        _check_seconds("at_s", self.at_s)
        _check_field_names(self.changes)
        object.__setattr__(self, "changes", MappingProxyType(dict(self.changes)))


def validate_schedule(config: LinkConfig, schedule: Iterable[ScheduleStep]) -> None:
    """Check that each step, applied in time order from ``config``, gives a valid
    configuration; the error names the step that does not.
    """
    for step in sorted(schedule, key=lambda step: step.at_s):
        try:
            config = config.replace(**step.changes)
        except ParameterError as error:
            raise ParameterError(
                f"schedule step at {step.at_s:g}s: {error.parameter}",
                error.problem,
                error.accepted,
            ) from None
