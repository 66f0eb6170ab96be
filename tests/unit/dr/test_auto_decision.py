"""The automatic-failover decision rule (dr/auto.py: decide), case by case and as properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from auth_service.config.backup import DrAutoSettings, DrSettings
from auth_service.dr.auto import FailoverRecord, Observation, decide, fresh_observations

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
LIMIT = 1000
AUTO = DrAutoSettings(
    enabled=True,
    unreachable_seconds=30,
    quorum=2,
    observation_ttl_seconds=20,
    probe_interval_seconds=5,
)


def obs(
    observer: str,
    *,
    age: float = 1,
    down_for: float | None = 60,
    standby_reachable: bool = True,
    in_recovery: bool = True,
    lag: int | None = 10,
) -> Observation:
    """An observation `age` seconds old; down_for None means the primary answered."""
    at = NOW - timedelta(seconds=age)
    return Observation(
        observer=observer,
        at=at,
        primary="a:5432",
        standby="b:5432",
        primary_reachable=down_for is None,
        unreachable_since=None if down_for is None else at - timedelta(seconds=down_for),
        standby_reachable=standby_reachable,
        standby_in_recovery=standby_reachable and in_recovery,
        standby_lag_bytes=lag if standby_reachable else None,
    )


def test_two_fresh_agreeing_observers_fail_over() -> None:
    decision = decide([obs("x"), obs("y")], AUTO, LIMIT, NOW)
    assert decision.failover
    assert decision.agreeing == ("x", "y")
    assert "2 observers (x, y)" in decision.reason


def test_disabled_never_fails_over() -> None:
    off = AUTO.model_copy(update={"enabled": False})
    decision = decide([obs("x"), obs("y"), obs("z")], off, LIMIT, NOW)
    assert not decision.failover
    assert "off" in decision.reason


def test_single_observer_is_not_a_quorum() -> None:
    decision = decide([obs("x")], AUTO, LIMIT, NOW)
    assert not decision.failover
    assert "1 fresh observation(s) (x), quorum is 2" in decision.reason


def test_one_observer_publishing_twice_counts_once() -> None:
    decision = decide([obs("x", age=1), obs("x", age=3)], AUTO, LIMIT, NOW)
    assert not decision.failover
    assert "quorum is 2" in decision.reason


def test_stale_observations_do_not_count() -> None:
    decision = decide([obs("x"), obs("y", age=21)], AUTO, LIMIT, NOW)
    assert not decision.failover
    assert "1 fresh observation(s) (x)" in decision.reason


def test_observation_from_the_future_beyond_the_ttl_is_stale() -> None:
    decision = decide([obs("x"), obs("y", age=-25)], AUTO, LIMIT, NOW)
    assert not decision.failover


def test_small_clock_skew_is_tolerated() -> None:
    assert decide([obs("x"), obs("y", age=-2)], AUTO, LIMIT, NOW).failover


def test_one_dissenter_who_reaches_the_primary_vetoes() -> None:
    decision = decide([obs("x"), obs("y"), obs("z", down_for=None)], AUTO, LIMIT, NOW)
    assert not decision.failover
    assert decision.reason == "the primary is reachable from z"


def test_a_stale_dissenter_does_not_veto() -> None:
    assert decide([obs("x"), obs("y"), obs("z", down_for=None, age=60)], AUTO, LIMIT, NOW).failover


def test_outage_shorter_than_unreachable_seconds_waits() -> None:
    decision = decide([obs("x"), obs("y", down_for=29)], AUTO, LIMIT, NOW)
    assert not decision.failover
    assert decision.agreeing == ("x",)
    assert "1 observer(s) have seen the primary unreachable for 30s" in decision.reason


def test_recently_down_observer_does_not_block_a_quorum() -> None:
    decision = decide([obs("x"), obs("y"), obs("z", down_for=5)], AUTO, LIMIT, NOW)
    assert decision.failover
    assert decision.agreeing == ("x", "y")


def test_quorum_of_three_needs_three() -> None:
    three = AUTO.model_copy(update={"quorum": 3})
    assert not decide([obs("x"), obs("y")], three, LIMIT, NOW).failover
    assert decide([obs("x"), obs("y"), obs("z")], three, LIMIT, NOW).failover


def test_lag_over_the_limit_refuses() -> None:
    decision = decide([obs("x", lag=LIMIT + 1), obs("y")], AUTO, LIMIT, NOW)
    assert not decision.failover
    assert f"{LIMIT + 1} bytes behind (limit {LIMIT})" in decision.reason


def test_lag_at_the_limit_is_allowed() -> None:
    assert decide([obs("x", lag=LIMIT), obs("y", lag=0)], AUTO, LIMIT, NOW).failover


def test_standby_out_of_recovery_refuses() -> None:
    decision = decide([obs("x", in_recovery=False), obs("y")], AUTO, LIMIT, NOW)
    assert not decision.failover
    assert "not in recovery" in decision.reason


def test_standby_unreachable_from_everyone_refuses() -> None:
    decision = decide(
        [obs("x", standby_reachable=False), obs("y", standby_reachable=False)], AUTO, LIMIT, NOW
    )
    assert not decision.failover
    assert decision.reason == "no observer reaches the standby"


def test_standby_reachable_from_one_observer_is_enough() -> None:
    assert decide([obs("x", standby_reachable=False), obs("y")], AUTO, LIMIT, NOW).failover


def test_no_observations() -> None:
    decision = decide([], AUTO, LIMIT, NOW)
    assert not decision.failover
    assert "0 fresh observation(s) (none)" in decision.reason


# Values at and around each threshold, so that every rule is both met and missed often.
observations = st.lists(
    st.builds(
        obs,
        st.sampled_from(["x", "y", "z", "w"]),
        age=st.sampled_from([0, 1, 19, 20, 21, -2, -21]),
        down_for=st.sampled_from([None, 0, 29, 30, 60]),
        standby_reachable=st.sampled_from([True, True, True, False]),
        in_recovery=st.sampled_from([True, True, True, False]),
        lag=st.sampled_from([None, 0, LIMIT, LIMIT + 1]),
    ),
    max_size=6,
)


@settings(max_examples=500)
@given(observations, st.integers(2, 4))
def test_a_failover_decision_always_satisfies_every_rule(
    seen: list[Observation], quorum: int
) -> None:
    auto = AUTO.model_copy(update={"quorum": quorum})
    decision = decide(seen, auto, LIMIT, NOW)
    fresh = fresh_observations(seen, auto.observation_ttl_seconds, NOW)
    if not decision.failover:
        return
    assert len(fresh) >= quorum
    assert not any(o.primary_reachable for o in fresh)
    assert sum(o.down_for >= auto.unreachable_seconds for o in fresh) >= quorum
    assert all(o.standby_in_recovery for o in fresh if o.standby_reachable)
    assert any(o.standby_reachable for o in fresh)
    assert all((o.standby_lag_bytes or 0) <= LIMIT for o in fresh)
    assert not decide(seen, auto.model_copy(update={"enabled": False}), LIMIT, NOW).failover


def test_observation_round_trips_and_rejects_garbage() -> None:
    o = obs("x")
    assert Observation.from_json(o.to_json()) == o
    with pytest.raises(ValueError, match="not an observation"):
        Observation.from_json(b'{"format": 1}')
    with pytest.raises(ValueError, match="unknown observation format"):
        Observation.from_json(b'{"format": 99}')
    with pytest.raises(ValueError, match="not an observation"):
        Observation.from_json(b"not json")
    with pytest.raises(ValueError, match="not an observation"):
        Observation.from_json(b"[1]")


def test_lock_record_round_trips() -> None:
    record = FailoverRecord("x", NOW, "a:1", "b:2", "why", ["x", "y"], "success", steps=[("s", 1)])
    assert FailoverRecord.from_json(record.to_json()) == FailoverRecord(
        "x", NOW, "a:1", "b:2", "why", ["x", "y"], "success", steps=[("s", 1.0)]
    )


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"quorum": 1}, "quorum must be at least 2 when enabled"),
        ({"unreachable_seconds": 5}, "unreachable_seconds must be at least 2 x"),
        ({"observation_ttl_seconds": 5}, "observation_ttl_seconds must be at least 2 x"),
        ({"observer_id": "a/b"}, "1 to 64 letters"),
        ({"observer_id": "-x"}, "starting with a letter or digit"),
    ],
)
def test_settings_are_validated_when_enabled(update: dict[str, object], message: str) -> None:
    data = {**AUTO.model_dump(), **update}
    with pytest.raises(ValidationError, match=message):
        DrAutoSettings.model_validate(data)


def test_disabled_settings_are_not_held_to_the_quorum() -> None:
    assert DrAutoSettings(quorum=1).quorum == 1
    assert not DrSettings().auto.enabled


def test_enabled_needs_a_standby() -> None:
    with pytest.raises(ValidationError, match=r"auto\.enabled needs standby_url"):
        DrSettings(auto=AUTO)
    assert DrSettings(standby_url="postgresql://b/auth", auto=AUTO).auto.enabled  # type: ignore[arg-type]
