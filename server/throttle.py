"""Pure rate limiters: login backoff per key and a token bucket. Callers pass ``now``
(seconds, any monotonic origin)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LoginThrottle", "TokenBucket"]


@dataclass(slots=True)
class _Failures:
    count: int
    blocked_until: float
    last: float


class LoginThrottle:
    """Exponential backoff after repeated login failures, per key.

    Keys are strings such as ``"user:alice"`` or ``"addr:192.0.2.1"``. Failures
    before the ``free_failures``-th cost nothing; that one and each after it block
    the key for ``base_delay * 2**(n - free_failures)`` seconds (n counting
    failures), up to ``max_delay``. A success
    resets the key; a key idle for ``forget_after`` seconds is forgotten, and at
    most ``max_keys`` keys are kept (the oldest go first), so memory is bounded.
    """

    def __init__(
        self,
        free_failures: int = 5,
        base_delay: float = 1.0,
        max_delay: float = 900.0,
        forget_after: float = 3600.0,
        max_keys: int = 100_000,
    ) -> None:
        self.free_failures = free_failures
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self.max_keys = max_keys
        self._keys: dict[str, _Failures] = {}

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again (0 when it may try now)."""
        entry = self._keys.get(key)
        if entry is None:
            return 0.0
        if now - entry.last > self.forget_after:
            del self._keys[key]
            return 0.0
        return max(0.0, entry.blocked_until - now)

    def failure(self, key: str, now: float) -> None:
        """Record a failed attempt for ``key``."""
        entry = self._keys.pop(key, None)
        if entry is None or now - entry.last > self.forget_after:
            entry = _Failures(0, 0.0, now)
        entry.count += 1
        entry.last = now
        excess = entry.count - self.free_failures
        if excess >= 0:
            delay = min(self.max_delay, self.base_delay * 2.0 ** min(excess, 30))
            entry.blocked_until = now + delay
        self._keys[key] = entry
        while len(self._keys) > self.max_keys:
            del self._keys[next(iter(self._keys))]

    def success(self, key: str) -> None:
        """Forget the failures of ``key``."""
        self._keys.pop(key, None)

    def __len__(self) -> int:
        return len(self._keys)


class TokenBucket:
    """Allows ``rate`` events per second on average with bursts up to ``burst``."""

    __slots__ = ("rate", "burst", "_tokens", "_updated")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._updated = now

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if there are enough; say whether it was allowed."""
        elapsed = now - self._updated
        if elapsed > 0:
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
            self._updated = now
        if self._tokens >= cost:
            self._tokens -= cost
            return True
        return False

    def wait_time(self, now: float, cost: float = 1.0) -> float:
        """Seconds until ``cost`` tokens will be available."""
        elapsed = max(0.0, now - self._updated)
        tokens = min(self.burst, self._tokens + elapsed * self.rate)
        return max(0.0, (cost - tokens) / self.rate)
