"""Seeded random streams whose successive values can be correlated."""

from __future__ import annotations

import math
import random

__all__ = ["CorrelatedRandom", "stage_rng"]

_SQRT2 = math.sqrt(2.0)


def stage_rng(seed: int | str, stage: str) -> random.Random:
    """A generator for one stage of one link, independent of every other stage's.

    String seeds are hashed by ``random`` the same way on every run and platform, so
    the same link seed always gives each stage the same stream.
    """
    return random.Random(f"netsim/{seed}/{stage}")


class CorrelatedRandom:
    """Random draws in which each value leans on the previous one, as netem's do.

    ``correlation`` is netem's correlation parameter as a fraction from 0 to 1. At 0
    the draws are independent. Above 0 they follow a Gaussian AR(1) process,
    ``z[n] = c * z[n-1] + sqrt(1 - c**2) * e[n]``, mapped through the normal CDF when
    a uniform value is needed. netem instead averages the new draw with the previous
    one, which narrows the distribution: its 2% loss with 50% correlation loses far
    less than 2%. This construction keeps every marginal distribution exactly as
    configured and only adds the dependence.
    """

    def __init__(self, rng: random.Random, correlation: float = 0.0) -> None:
        self._rng = rng
        self.correlation = correlation
        self._previous: float | None = None

    def normal(self) -> float:
        """A standard normal value."""
        c = self.correlation
        if c == 0.0:
            return self._rng.gauss(0.0, 1.0)
        previous = self._previous
        if previous is None:
            value = self._rng.gauss(0.0, 1.0)
        else:
            value = c * previous + math.sqrt(1.0 - c * c) * self._rng.gauss(0.0, 1.0)
        self._previous = value
        return value

    def uniform(self) -> float:
        """A value uniformly distributed in [0, 1)."""
        if self.correlation == 0.0:
            return self._rng.random()
        return 0.5 * math.erfc(-self.normal() / _SQRT2)

    def chance(self, probability: float) -> bool:
        """True with the given probability."""
        if probability <= 0.0:
            return False
        if probability >= 1.0:
            return True
        return self.uniform() < probability
