"""Circuit breaker state machine and 429 cooldowns, driven by an injected clock."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from router.errors import UpstreamError
from router.routing.breaker import BreakerRegistry, BreakerState, ResilienceSettings


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def registry(clock: FakeClock, **settings: float) -> BreakerRegistry:
    return BreakerRegistry(ResilienceSettings(**settings), clock=clock)


def trip(reg: BreakerRegistry, conn: str, times: int) -> None:
    for _ in range(times):
        assert reg.allow(conn)[0]
        reg.on_failure(conn, breaker_worthy=True)


def test_opens_after_threshold_consecutive_worthy_failures(clock: FakeClock) -> None:
    reg = registry(clock)
    trip(reg, "c1", 4)
    assert reg.state("c1") is BreakerState.CLOSED
    assert reg.allow("c1") == (True, None)
    reg.on_failure("c1", breaker_worthy=True)
    assert reg.state("c1") is BreakerState.OPEN
    assert reg.allow("c1") == (False, "breaker_open")
    assert reg.retry_in("c1") == pytest.approx(30.0)
    # Other connections are unaffected.
    assert reg.allow("c2") == (True, None)


def test_success_resets_the_consecutive_count(clock: FakeClock) -> None:
    reg = registry(clock)
    trip(reg, "c1", 4)
    reg.on_success("c1")
    trip(reg, "c1", 4)
    assert reg.state("c1") is BreakerState.CLOSED
    assert reg.snapshot()["c1"]["consecutiveFailures"] == 4


def test_non_worthy_failures_do_not_count(clock: FakeClock) -> None:
    reg = registry(clock)
    for _ in range(20):
        reg.on_failure("c1", breaker_worthy=False)
    assert reg.state("c1") is BreakerState.CLOSED
    assert reg.allow("c1") == (True, None)
    snap = reg.snapshot()["c1"]
    assert snap["consecutiveFailures"] == 0
    assert snap["totalFailures"] == 20


def test_worthiness_comes_from_the_upstream_error_kind() -> None:
    assert UpstreamError("x", kind="timeout").breaker_worthy
    assert UpstreamError("x", kind="server", status=503).breaker_worthy
    assert UpstreamError("x", kind="bad_request", status=408).breaker_worthy
    assert not UpstreamError("x", kind="rate_limit", status=429).breaker_worthy
    assert not UpstreamError("x", kind="auth", status=401).breaker_worthy


def test_half_open_lets_exactly_one_probe_through(clock: FakeClock) -> None:
    reg = registry(clock)
    trip(reg, "c1", 5)
    clock.advance(29.9)
    assert reg.state("c1") is BreakerState.OPEN
    clock.advance(0.1)
    assert reg.state("c1") is BreakerState.HALF_OPEN
    # peek never takes the probe ...
    assert reg.peek("c1") == (True, None)
    assert reg.peek("c1") == (True, None)
    # ... allow does, and a concurrent second caller is refused while it is out.
    assert reg.allow("c1") == (True, None)
    assert reg.allow("c1") == (False, "probe_in_flight")
    assert reg.peek("c1") == (False, "probe_in_flight")
    reg.on_success("c1")
    assert reg.state("c1") is BreakerState.CLOSED
    assert reg.allow("c1") == (True, None)
    assert reg.allow("c1") == (True, None)


def test_failed_probe_reopens_with_doubled_cooldown_up_to_the_cap(clock: FakeClock) -> None:
    reg = registry(clock, cooldown_s=30, max_cooldown_s=200)
    trip(reg, "c1", 5)
    seen = []
    for _ in range(5):
        cooldown = reg.snapshot()["c1"]["cooldownSeconds"]
        seen.append(cooldown)
        clock.advance(cooldown)
        assert reg.allow("c1") == (True, None)  # the probe
        reg.on_failure("c1", breaker_worthy=True)
        assert reg.state("c1") is BreakerState.OPEN
    assert seen == [30, 60, 120, 200, 200]
    # Success after a long outage brings the cooldown back to the base value.
    clock.advance(200)
    assert reg.allow("c1") == (True, None)
    reg.on_success("c1")
    trip(reg, "c1", 5)
    assert reg.snapshot()["c1"]["cooldownSeconds"] == 30
    assert reg.snapshot()["c1"]["trips"] == 7


def test_default_cap_is_ten_minutes(clock: FakeClock) -> None:
    reg = registry(clock)
    trip(reg, "c1", 5)
    for _ in range(8):
        clock.advance(reg.snapshot()["c1"]["cooldownSeconds"])
        assert reg.allow("c1")[0]
        reg.on_failure("c1", breaker_worthy=True)
    assert reg.snapshot()["c1"]["cooldownSeconds"] == 600


def test_non_worthy_probe_result_frees_the_probe_without_closing(clock: FakeClock) -> None:
    reg = registry(clock)
    trip(reg, "c1", 5)
    clock.advance(30)
    assert reg.allow("c1")[0]
    reg.on_failure("c1", breaker_worthy=False)  # e.g. a 400 caused by the request
    assert reg.state("c1") is BreakerState.HALF_OPEN
    assert reg.allow("c1") == (True, None)


def test_cancelled_probe_is_freed_only_by_its_owner(clock: FakeClock) -> None:
    reg = registry(clock)
    trip(reg, "c1", 5)
    clock.advance(30)
    assert reg.allow("c1")[0]
    first = reg.probe_id("c1")
    assert first is not None
    reg.on_cancel("c1", first)
    assert reg.allow("c1")[0]
    second = reg.probe_id("c1")
    assert second != first
    reg.on_cancel("c1", first)  # a stale owner must not free the new probe
    assert reg.allow("c1") == (False, "probe_in_flight")
    reg.on_cancel("c1", second)
    assert reg.allow("c1") == (True, None)


def test_lost_probe_expires_after_the_max_cooldown(clock: FakeClock) -> None:
    reg = registry(clock, max_cooldown_s=100)
    trip(reg, "c1", 5)
    clock.advance(30)
    assert reg.allow("c1")[0]
    clock.advance(99)
    assert reg.allow("c1") == (False, "probe_in_flight")
    clock.advance(1)
    assert reg.allow("c1") == (True, None)


def test_rate_limit_cooldown_honours_retry_after(clock: FakeClock) -> None:
    reg = registry(clock)
    reg.on_failure("c1", breaker_worthy=False, retry_after=12, rate_limited=True)
    assert reg.allow("c1") == (False, "rate_limited")
    assert reg.retry_in("c1") == pytest.approx(12)
    assert reg.state("c1") is BreakerState.CLOSED  # 429s never move the breaker
    clock.advance(11.9)
    assert reg.allow("c1") == (False, "rate_limited")
    clock.advance(0.1)
    assert reg.allow("c1") == (True, None)
    assert reg.retry_in("c1") is None


def test_rate_limit_without_retry_after_uses_the_default(clock: FakeClock) -> None:
    reg = registry(clock, rate_limit_default_cooldown_s=45)
    reg.on_failure("c1", breaker_worthy=False, rate_limited=True)
    clock.advance(44)
    assert reg.allow("c1") == (False, "rate_limited")
    clock.advance(1)
    assert reg.allow("c1") == (True, None)


def test_shorter_retry_after_does_not_shorten_a_running_cooldown(clock: FakeClock) -> None:
    reg = registry(clock)
    reg.on_failure("c1", breaker_worthy=False, retry_after=60, rate_limited=True)
    reg.on_failure("c1", breaker_worthy=False, retry_after=5, rate_limited=True)
    clock.advance(30)
    assert reg.allow("c1") == (False, "rate_limited")


def test_reset_clears_one_or_all(clock: FakeClock) -> None:
    reg = registry(clock)
    trip(reg, "c1", 5)
    trip(reg, "c2", 5)
    reg.reset("c1")
    assert reg.state("c1") is BreakerState.CLOSED
    assert reg.state("c2") is BreakerState.OPEN
    reg.reset()
    assert reg.state("c2") is BreakerState.CLOSED


def test_snapshot_reports_state_and_timings(clock: FakeClock) -> None:
    reg = registry(clock)
    trip(reg, "c1", 5)
    clock.advance(10)
    snap = reg.snapshot()["c1"]
    assert snap["state"] == "open"
    assert snap["retryInSeconds"] == pytest.approx(20)
    assert snap["secondsSinceLastFailure"] == pytest.approx(10)
    assert snap["probeInFlight"] is False
    clock.advance(20)
    assert reg.snapshot()["c1"]["state"] == "half_open"


def test_settings_use_camel_case_aliases_and_forbid_unknown_fields() -> None:
    s = ResilienceSettings.model_validate(
        {"failureThreshold": 3, "cooldownSeconds": 5, "maxCooldownSeconds": 50}
    )
    assert (s.failure_threshold, s.cooldown_s, s.max_cooldown_s) == (3, 5, 50)
    assert s.model_dump(by_alias=True)["rateLimitDefaultCooldownSeconds"] == 60
    with pytest.raises(ValidationError):
        ResilienceSettings.model_validate({"failureTreshold": 3})
    with pytest.raises(ValidationError):
        ResilienceSettings(cooldown_s=60, max_cooldown_s=30)


def test_threshold_follows_settings_changed_at_runtime(clock: FakeClock) -> None:
    reg = registry(clock)
    reg.settings = ResilienceSettings(failure_threshold=2)
    trip(reg, "c1", 2)
    assert reg.state("c1") is BreakerState.OPEN


def test_a_429_on_one_model_cools_down_only_that_model(clock: FakeClock) -> None:
    reg = registry(clock)
    reg.on_failure("c1", breaker_worthy=False, retry_after=20, rate_limited=True, model="a")
    assert reg.allow("c1", "a") == (False, "rate_limited")
    assert reg.retry_in("c1", "a") == pytest.approx(20)
    assert reg.allow("c1", "b") == (True, None)
    assert reg.retry_in("c1", "b") is None
    assert reg.snapshot()["c1"]["rateLimitedModels"] == {"a": 20.0}
    reg.on_success("c1", "b")  # another model's success says nothing about a's limit
    assert reg.peek("c1", "a") == (False, "rate_limited")
    reg.on_success("c1", "a")
    assert reg.peek("c1", "a") == (True, None)


def test_an_account_wide_429_cools_down_every_model(clock: FakeClock) -> None:
    reg = registry(clock)
    reg.on_failure(
        "c1", breaker_worthy=False, retry_after=20, rate_limited=True, model="a",
        connection_wide=True,
    )  # fmt: skip
    assert reg.allow("c1", "b") == (False, "rate_limited")
    assert reg.retry_in("c1", "b") == pytest.approx(20)
    clock.advance(20)
    assert reg.allow("c1", "b") == (True, None)
