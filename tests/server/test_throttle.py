from server.throttle import LoginThrottle, TokenBucket


def test_backoff_doubles_after_free_failures():
    throttle = LoginThrottle(free_failures=5, base_delay=1.0, max_delay=8.0)
    for _ in range(4):
        throttle.failure("k", 0.0)
        assert throttle.retry_after("k", 0.0) == 0
    delays = []
    for _ in range(6):
        throttle.failure("k", 100.0)
        delays.append(throttle.retry_after("k", 100.0))
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    throttle.success("k")
    assert throttle.retry_after("k", 100.0) == 0


def test_keys_are_independent_and_forgotten():
    throttle = LoginThrottle(free_failures=1, forget_after=10.0)
    throttle.failure("a", 0.0)
    assert throttle.retry_after("a", 0.5) == 0.5
    assert throttle.retry_after("b", 0.5) == 0
    assert throttle.retry_after("a", 20.0) == 0
    assert len(throttle) == 0


def test_memory_is_bounded():
    throttle = LoginThrottle(max_keys=100)
    for i in range(1000):
        throttle.failure(f"addr:{i}", float(i))
    assert len(throttle) == 100
    assert throttle.retry_after("addr:999", 999.0) == 0  # first failure is free


def test_token_bucket():
    bucket = TokenBucket(rate=10.0, burst=5.0, now=0.0)
    assert all(bucket.take(0.0) for _ in range(5))
    assert not bucket.take(0.0)
    assert abs(bucket.wait_time(0.0) - 0.1) < 1e-9
    assert bucket.take(0.1)
    assert not bucket.take(0.1)
    assert all(bucket.take(10.0) for _ in range(5))
