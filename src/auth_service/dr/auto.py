"""Automatic failover, off by default: observers (`auth-service dr watch`) probe the primary and
the standby, publish what they see to a shared object store outside region A, and fail over
only when a quorum of fresh observations agrees (docs/adr/0303-automatic-failover-observers.md).

This is not a consensus system. The store's conditional create of one lock object makes exactly
one observer run the failover; the others see the lock and stand down, and nobody acts again
until an operator deletes the lock (`auth-service dr rearm`). Failback stays manual.

The holder renews its lock while it fails over; a lock still `running` and not renewed for its
lease belongs to a holder that is gone, and a quorum that agrees again may take it over (one
more conditional create) and finish the failover without promoting twice (ADR 0326).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from auth_service.audit import events
from auth_service.backup import pgtools
from auth_service.backup.errors import BackupError
from auth_service.backup.storage import Storage
from auth_service.config.backup import OBSERVER_ID, BackupDestination, DrAutoSettings, DrSettings
from auth_service.dr.audit import WATCH, record_dr_event
from auth_service.dr.service import (
    CONNECTION_LOST,
    NODE_ERRORS,
    REFUSALS,
    DrError,
    DrService,
    NodeStatus,
    Repoint,
    node_status,
)
from auth_service.observability import metrics

if TYPE_CHECKING:
    from auth_service.config.settings import Settings

PREFIX = "dr-auto/"
OBSERVATIONS = PREFIX + "observers/"
LOCK = PREFIX + "failover-lock.json"
# Takeovers of an abandoned lock: generation n >= 2 of the lock, each a conditional create.
TAKEOVERS = PREFIX + "takeovers/"
FORMAT = 1
# Attempts of one failover by its holder when a connection breaks under it (the next ones
# resume: a standby already promoted is finished, not promoted again).
FAILOVER_ATTEMPTS = 3

Clock = Callable[[], datetime]
StepResult = Literal["observing", "stood down", "failed over", "failover failed", "no store"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class DrConfigError(DrError):
    """A configuration an observer cannot work with: it stops (non-zero exit) instead of
    observing wrongly."""


def _why(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:300] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _seconds(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def lock_key(generation: int) -> str:
    return LOCK if generation <= 1 else f"{TAKEOVERS}{generation}.json"


@dataclass(frozen=True)
class Observation:
    """What one observer saw at one probe; one JSON object per observer in the store."""

    observer: str
    at: datetime
    primary: str
    standby: str
    primary_reachable: bool
    unreachable_since: datetime | None
    standby_reachable: bool
    standby_in_recovery: bool
    standby_lag_bytes: int | None
    error: str | None = None

    @property
    def down_for(self) -> float:
        """Seconds the primary had been unreachable when this was observed (0: reachable)."""
        if self.primary_reachable or self.unreachable_since is None:
            return 0.0
        return max(0.0, (self.at - self.unreachable_since).total_seconds())

    def to_json(self) -> bytes:
        data = asdict(self)
        data["format"] = FORMAT
        data["at"] = self.at.isoformat()
        data["unreachable_since"] = (
            self.unreachable_since.isoformat() if self.unreachable_since else None
        )
        return json.dumps(data, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Observation:
        """Parse a published observation; ValueError when it is not one we understand."""
        try:
            data = json.loads(raw)
            if data.get("format") != FORMAT:
                raise ValueError(f"unknown observation format {data.get('format')!r}")
            lag = data["standby_lag_bytes"]
            return cls(
                observer=str(data["observer"]),
                at=datetime.fromisoformat(data["at"]),
                primary=str(data["primary"]),
                standby=str(data["standby"]),
                primary_reachable=bool(data["primary_reachable"]),
                unreachable_since=_time(data["unreachable_since"]),
                standby_reachable=bool(data["standby_reachable"]),
                standby_in_recovery=bool(data["standby_in_recovery"]),
                standby_lag_bytes=None if lag is None else int(lag),
                error=data.get("error"),
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not an observation ({exc})") from None


@dataclass(frozen=True)
class Decision:
    failover: bool
    reason: str
    fresh: tuple[str, ...] = ()
    agreeing: tuple[str, ...] = ()


def _names(observations: Iterable[Observation]) -> str:
    return ", ".join(sorted(o.observer for o in observations))


def fresh_observations(
    observations: Iterable[Observation], ttl_seconds: float, now: datetime
) -> list[Observation]:
    """The newest observation per observer, if younger than the TTL.

    Clocks are compared across hosts, so an observation from further than the TTL in the
    future is as unusable as an old one.
    """
    newest: dict[str, Observation] = {}
    for o in observations:
        if o.observer not in newest or o.at > newest[o.observer].at:
            newest[o.observer] = o
    return [o for o in newest.values() if abs((now - o.at).total_seconds()) <= ttl_seconds]


def decide(
    observations: Iterable[Observation],
    auto: DrAutoSettings,
    max_lag_bytes: int,
    now: datetime,
    *,
    takeover: bool = False,
) -> Decision:
    """Fail over only when every rule allows it (docs/operations/disaster-recovery.md):

    automatic failover is enabled; at least ``quorum`` fresh observations (younger than
    ``observation_ttl_seconds``, one per observer) have seen the primary unreachable for at
    least ``unreachable_seconds``; no fresh observation reaches the primary; the standby is
    reachable and in recovery; and no fresh observation puts its lag above ``max_lag_bytes``.

    ``takeover``: the rule for finishing the failover of an abandoned lock (ADR 0326): the same,
    except that a standby already promoted (by the holder that is gone) does not refuse it.
    """
    if not auto.enabled:
        return Decision(False, "automatic failover is off (dr.auto.enabled)")
    fresh = fresh_observations(observations, auto.observation_ttl_seconds, now)
    names = tuple(sorted(o.observer for o in fresh))
    reaching = [o for o in fresh if o.primary_reachable]
    if reaching:
        return Decision(False, f"the primary is reachable from {_names(reaching)}", names)
    if len(fresh) < auto.quorum:
        return Decision(
            False,
            f"{len(fresh)} fresh observation(s) ({_names(fresh) or 'none'}), "
            f"quorum is {auto.quorum}",
            names,
        )
    agreeing = [o for o in fresh if o.down_for >= auto.unreachable_seconds]
    agreed = tuple(sorted(o.observer for o in agreeing))
    if len(agreeing) < auto.quorum:
        return Decision(
            False,
            f"{len(agreeing)} observer(s) have seen the primary unreachable for "
            f"{auto.unreachable_seconds:g}s, quorum is {auto.quorum}",
            names,
            agreed,
        )
    if takeover and any(o.standby_reachable and not o.standby_in_recovery for o in fresh):
        return Decision(
            True,
            f"{len(agreeing)} observers ({_names(agreeing)}) have seen the primary unreachable "
            f"for at least {auto.unreachable_seconds:g}s; the standby is promoted already",
            names,
            agreed,
        )
    refusal = _standby_refusal(fresh, max_lag_bytes)
    if refusal is not None:
        return Decision(False, refusal, names, agreed)
    lag = max(o.standby_lag_bytes for o in fresh if o.standby_lag_bytes is not None)
    return Decision(
        True,
        f"{len(agreeing)} observers ({_names(agreeing)}) have seen the primary unreachable for "
        f"at least {auto.unreachable_seconds:g}s; the standby is in recovery, {lag} bytes behind",
        names,
        agreed,
    )


def _standby_refusal(fresh: list[Observation], max_lag_bytes: int) -> str | None:
    """Why the standby cannot take over, as the fresh observations see it; None if it can."""
    promoted = [o for o in fresh if o.standby_reachable and not o.standby_in_recovery]
    if promoted:
        return f"the standby is not in recovery (seen by {_names(promoted)})"
    if not any(o.standby_reachable for o in fresh):
        return "no observer reaches the standby"
    lags = [o.standby_lag_bytes for o in fresh if o.standby_lag_bytes is not None]
    lag = max(lags, default=None)
    if lag is None:
        return "no observer knows the standby's lag"
    if lag > max_lag_bytes:
        return (
            f"the standby is {lag} bytes behind (limit {max_lag_bytes}): failing over would "
            "lose them"
        )
    return None


@dataclass
class FailoverRecord:
    """The lock object: who took it, why, and (once done) how the failover went."""

    observer: str
    taken_at: datetime
    primary: str
    standby: str
    reason: str
    agreeing: list[str]
    outcome: Literal["running", "success", "failed"] = "running"
    error: str | None = None
    finished_at: datetime | None = None
    steps: list[tuple[str, float]] = field(default_factory=list)
    # ADR 0326: 1 for the lock itself, n for its (n - 1)th takeover; the holder renews
    # renewed_at while it works, and a `running` lock not renewed for lease_seconds is
    # abandoned. A lock without a lease (older observers) is never taken over.
    generation: int = 1
    lease_seconds: float | None = None
    renewed_at: datetime | None = None
    takes_over: str | None = None

    def to_json(self) -> bytes:
        data = asdict(self)
        data["taken_at"] = self.taken_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        data["renewed_at"] = self.renewed_at.isoformat() if self.renewed_at else None
        return json.dumps(data, sort_keys=True).encode()

    def abandoned(self, now: datetime) -> bool:
        """Still `running`, and not renewed for its lease: its holder is gone."""
        if self.outcome != "running" or self.lease_seconds is None:
            return False
        last = self.renewed_at or self.taken_at
        return (now - last).total_seconds() > self.lease_seconds

    @classmethod
    def from_json(cls, raw: bytes) -> FailoverRecord:
        data = json.loads(raw)
        return cls(
            observer=str(data["observer"]),
            taken_at=datetime.fromisoformat(data["taken_at"]),
            primary=str(data["primary"]),
            standby=str(data["standby"]),
            reason=str(data["reason"]),
            agreeing=[str(a) for a in data["agreeing"]],
            outcome=data["outcome"],
            error=data.get("error"),
            finished_at=_time(data.get("finished_at")),
            steps=[(str(n), float(s)) for n, s in data.get("steps", [])],
            generation=int(data.get("generation", 1)),
            lease_seconds=_seconds(data.get("lease_seconds")),
            renewed_at=_time(data.get("renewed_at")),
            takes_over=data.get("takes_over"),
        )


def default_observer_id() -> str:
    """The host name (a pod's name on Kubernetes), if it is a valid observer id."""
    name = socket.gethostname()
    if not OBSERVER_ID.fullmatch(name):
        raise DrError(
            f"host name {name!r} is not a valid observer id: set dr.auto.observer_id "
            "(or --observer-id)"
        )
    return name


def store_destination(
    auto: DrAutoSettings, destinations: list[BackupDestination]
) -> BackupDestination | None:
    """Where observations and the lock live: dr.auto.store, else the last backup destination
    (the DR-region copy). None when neither is configured."""
    if auto.store is not None:
        return auto.store
    return destinations[-1] if destinations else None


async def _takeovers(store: Storage) -> dict[int, str]:
    found = {}
    for info in await store.list(TAKEOVERS):
        stem = info.name.rsplit("/", 1)[-1].removesuffix(".json")
        if stem.isdigit() and int(stem) >= 2:
            found[int(stem)] = info.name
    return found


async def read_lock(store: Storage) -> FailoverRecord | None:
    """The current lock: its newest generation (the lock, or its latest takeover)."""
    if not await store.exists(LOCK):
        return None
    takeovers = await _takeovers(store)
    generation = max(takeovers, default=1)
    raw = await store.get_bytes(takeovers.get(generation, LOCK))
    try:
        record = FailoverRecord.from_json(raw)
    except (ValueError, KeyError, TypeError) as exc:
        # An unreadable lock is still a lock: acting on it could fail over twice.
        return FailoverRecord(
            "unknown", _utcnow(), "?", "?", f"unreadable lock object ({exc})", [], "failed"
        )
    record.generation = generation
    return record


async def rearm(store: Storage) -> FailoverRecord | None:
    """Delete the failover lock so observers may fail over again; returns what it held.
    Takeovers go first: the lock object, deleted last, is what arms the observers."""
    held = await read_lock(store)
    for name in (await _takeovers(store)).values():
        await store.delete(name)
    await store.delete(LOCK)
    return held


async def audit_failover(settings: Settings, standby_url: str, record: FailoverRecord) -> None:
    """Record a successful automatic failover as an audit event in the database it promoted
    (the old primary is gone). A failed attempt leaves the standby read-only: its record is
    the lock object, the metric and the watcher's output."""
    if record.outcome != "success":
        return
    await record_dr_event(
        settings,
        standby_url,
        events.DR_AUTO_FAILOVER,
        WATCH,
        {
            "observer": record.observer,
            "agreeing": record.agreeing,
            "old_primary": record.primary,
            "new_primary": record.standby,
            "reason": record.reason,
            "steps": [[name.strip(), seconds] for name, seconds in record.steps],
            "seconds": round(sum(s for _, s in record.steps), 3),
        },
    )


class Watcher:
    """One observer: probe, publish, decide, and (holding the lock) fail over once."""

    def __init__(
        self,
        service: DrService,
        store: Storage,
        settings: DrSettings,
        observer_id: str,
        *,
        repoint: Repoint | None = None,
        on_failover: Callable[[FailoverRecord], Awaitable[None]] | None = None,
        say: Callable[[str], None] = lambda _: None,
        clock: Clock = _utcnow,
    ) -> None:
        self.service = service
        self.store = store
        self.settings = settings
        self.auto = settings.auto
        self.observer_id = observer_id
        self.repoint = repoint
        self.on_failover = on_failover
        self.say = say
        self.clock = clock
        self._down_since: datetime | None = None
        self._last_lag: int | None = None
        self._last_message: str | None = None

    def _tell(self, message: str) -> None:
        """Say what changed, not the same line every probe."""
        if message != self._last_message:
            self._last_message = message
            self.say(message)

    async def _node(self, name: str, info: pgtools.ConnInfo) -> NodeStatus:
        timeout = max(3.5, self.auto.probe_interval_seconds)
        try:
            return await asyncio.wait_for(node_status(name, info, raise_refusals=True), timeout)
        except REFUSALS as exc:
            # Counting it as unreachable could fail over a live primary: stop instead.
            raise DrConfigError(
                f"the {name} {info.host}:{info.port} refuses this observer ({_why(exc)}): "
                "check database.url, dr.standby_url and the server's pg_hba.conf; not observing"
            ) from None
        except NODE_ERRORS as exc:
            # Lost mid-query (a kill lands between two statements: asyncpg's InterfaceError or
            # InternalClientError), or hung: unusable either way.
            return NodeStatus(
                name, f"{info.host}:{info.port}", error=str(exc)[:200] or type(exc).__name__
            )

    async def probe(self) -> Observation:
        primary, standby = await asyncio.gather(
            self._node("primary", self.service.primary),
            self._node("standby", self.service.standby),
        )
        now = self.clock()
        if primary.reachable:
            self._down_since = None
        elif self._down_since is None:
            self._down_since = now
        in_recovery = standby.reachable and standby.role == "standby"
        lag: int | None = None
        if in_recovery:
            if primary.reachable and primary.role == "primary" and primary.lsn and standby.lsn:
                lag = max(0, pgtools.lsn_bytes(primary.lsn) - pgtools.lsn_bytes(standby.lsn))
                self._last_lag = lag
            else:
                # The primary is gone: what the standby has not replayed yet, or what it
                # lacked when we last saw both, whichever is more.
                lag = max(standby.lag_bytes or 0, self._last_lag or 0)
        metrics.DR_OBSERVER_PRIMARY_REACHABLE.labels(self.observer_id).set(
            1 if primary.reachable else 0
        )
        return Observation(
            observer=self.observer_id,
            at=now,
            primary=primary.address,
            standby=standby.address,
            primary_reachable=primary.reachable,
            unreachable_since=self._down_since,
            standby_reachable=standby.reachable,
            standby_in_recovery=in_recovery,
            standby_lag_bytes=lag,
            error=primary.error,
        )

    async def observations(self) -> list[Observation]:
        found = []
        for info in await self.store.list(OBSERVATIONS):
            if not info.name.endswith(".json"):
                continue
            try:
                found.append(Observation.from_json(await self.store.get_bytes(info.name)))
            except ValueError as exc:
                self._tell(f"ignoring {info.name}: {exc}")
        return found

    @property
    def lease_seconds(self) -> float:
        """How long a holder may go without renewing its lock before the quorum may take it
        over (ADR 0326): twice the observations' TTL, itself at least two probe intervals."""
        return 2 * self.auto.observation_ttl_seconds

    async def step(self) -> StepResult:
        """One round: probe, publish, then act only if the decision and the lock allow."""
        # With the fresh count, what AuthDrObserversBelowQuorum compares (monitoring/).
        metrics.DR_AUTO_ENABLED.labels(self.observer_id).set(1 if self.auto.enabled else 0)
        metrics.DR_AUTO_QUORUM.labels(self.observer_id).set(self.auto.quorum)
        observation = await self.probe()
        try:
            await self.store.put_bytes(
                f"{OBSERVATIONS}{self.observer_id}.json", observation.to_json()
            )
            held = await read_lock(self.store)
            if held is not None and not held.abandoned(self.clock()):
                self._tell(
                    f"standing down: {held.observer} took the failover lock at "
                    f"{held.taken_at.isoformat()} (outcome {held.outcome}); "
                    "`auth-service dr rearm` re-enables automatic failover"
                )
                return "stood down"
            seen = await self.observations()
        except BackupError as exc:
            # Without the shared store nobody can agree or take the lock: never act. It sees
            # no observation either, which is what the fresh count says.
            metrics.DR_OBSERVERS_FRESH.labels(self.observer_id).set(0)
            self._tell(f"shared store unusable, not acting: {exc}")
            return "no store"
        takeover = held is not None
        decision = decide(
            seen, self.auto, self.settings.max_lag_bytes, self.clock(), takeover=takeover
        )
        metrics.DR_OBSERVERS_FRESH.labels(self.observer_id).set(len(decision.fresh))
        state = "reachable" if observation.primary_reachable else "UNREACHABLE"
        if held is not None:
            self._tell(
                f"the failover lock of {held.observer} (generation {held.generation}) is "
                f"abandoned: `running`, not renewed for {held.lease_seconds:g}s; primary "
                f"{observation.primary} {state}; {decision.reason}"
            )
            if not decision.failover:
                return "stood down"
        else:
            self._tell(f"primary {observation.primary} {state}; {decision.reason}")
        if not decision.failover:
            return "observing"
        usable = observation.standby_reachable if takeover else observation.standby_in_recovery
        if not usable:
            # Taking the lock only to fail at the standby would disarm everyone.
            self._tell(
                "agreed, but this observer does not reach the standby: leaving it to another"
            )
            return "observing"
        return await self._fail_over(observation, decision, held)

    async def _fail_over(
        self, observation: Observation, decision: Decision, held: FailoverRecord | None = None
    ) -> StepResult:
        now = self.clock()
        record = FailoverRecord(
            observer=self.observer_id,
            taken_at=now,
            primary=observation.primary,
            standby=observation.standby,
            reason=decision.reason,
            agreeing=list(decision.agreeing),
            generation=1 if held is None else held.generation + 1,
            lease_seconds=self.lease_seconds,
            renewed_at=now,
            takes_over=None if held is None else held.observer,
        )
        key = lock_key(record.generation)
        try:
            won = await self.store.put_new(key, record.to_json())
        except BackupError as exc:
            self._tell(f"could not take the failover lock, not acting: {exc}")
            return "no store"
        if not won:
            self._tell("another observer took the failover lock first: standing down")
            return "stood down"
        if held is None:
            self.say(f"took the failover lock: {decision.reason}; failing over")
        else:
            self.say(
                f"took over the abandoned failover lock of {held.observer}: {decision.reason}; "
                "finishing the failover"
            )
        done = asyncio.Event()
        renewing = asyncio.create_task(self._renew(key, record, done))
        try:
            timer = await self._attempt_failover(resume=held is not None)
        except Exception as exc:  # whatever it was, the lock must say so: never left `running`
            record.outcome, record.error = "failed", _why(exc)[:500]
            self.say(f"automatic failover failed: {record.error}; an operator must decide")
        else:
            record.outcome, record.steps = "success", [(n, round(s, 3)) for n, s in timer.steps]
            self.say(f"automatic failover done in {timer.total:.2f}s: the standby is the primary")
        finally:
            # Let a renewal in flight land before the outcome, never after it.
            done.set()
            await renewing
        record.finished_at = self.clock()
        metrics.DR_AUTO_FAILOVERS.labels(record.outcome).inc()
        try:
            await self.store.put_bytes(key, record.to_json())
        except BackupError as exc:
            self.say(f"could not record the outcome in the lock: {exc}")
        if self.on_failover is not None:
            try:
                await self.on_failover(record)
            except Exception as exc:  # the failover happened; a failed report must not hide it
                self.say(f"could not record the audit event: {str(exc)[:300]}")
        return "failed over" if record.outcome == "success" else "failover failed"

    async def _attempt_failover(self, *, resume: bool) -> Any:
        """The failover, again (resuming) when a connection breaks under it: a promotion whose
        answer was lost is finished, not repeated. Refusals (DrError) are final."""
        for attempt in range(1, FAILOVER_ATTEMPTS + 1):
            try:
                # The quorum has just seen the primary unreachable for the whole window, this
                # observer in this very step: probing or fencing it again only waits for
                # timeouts.
                return await self.service.failover(
                    repoint=self.repoint,
                    primary_unreachable=True,
                    resume=resume or attempt > 1,
                )
            except CONNECTION_LOST as exc:
                if attempt == FAILOVER_ATTEMPTS:
                    raise
                self.say(
                    f"failover attempt {attempt} lost its connection ({_why(exc)}); resuming it"
                )
                await asyncio.sleep(self.auto.probe_interval_seconds)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _renew(self, key: str, record: FailoverRecord, done: asyncio.Event) -> None:
        """Renew the lock every probe interval until ``done``: the others' proof that this
        holder is alive (ADR 0326)."""
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), self.auto.probe_interval_seconds)
            if done.is_set():
                return
            record.renewed_at = self.clock()
            try:
                await self.store.put_bytes(key, record.to_json())
            except BackupError as exc:
                self._tell(f"could not renew the failover lock: {exc}")

    async def run(self, stop: asyncio.Event) -> None:
        """Probe every interval until ``stop`` is set. After a failover (its own or another
        observer's) it keeps observing but never acts again, and never fails back.

        A round that raises publishes nothing (its observation ages, so it cannot count
        toward a failover), says why, and the next round comes as usual: only a
        configuration error (DrConfigError) stops the observer."""
        while not stop.is_set():
            try:
                await self.step()
            except DrConfigError:
                raise
            except Exception as exc:
                self._tell(f"observer round failed, still observing: {_why(exc)}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.auto.probe_interval_seconds)
