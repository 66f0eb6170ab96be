"""`dr watch` end to end under writes (issue #20): the primary of a synchronous pair hangs (every
process SIGSTOPped, like a frozen host: connections get no answer), two real observers fail over,
writers repointed by the URL file resume on the new primary. Asserts the order of events and zero
acknowledged writes lost, not a time: bench/dr/ gives the times (kill -9 and freeze)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.dr_watch import port_picker, run_trial

# Throwaway PostgreSQL clusters: the server binaries, not the shared test server.
pytestmark = [pytest.mark.slow, pytest.mark.postgres]


async def test_hung_primary_observers_fail_over_and_no_acknowledged_write_is_lost(
    tmp_path: Path,
) -> None:
    window, probe = 2.0, 0.5
    trial = await run_trial(
        tmp_path,
        window=window,
        probe=probe,
        fault="freeze",
        pick_port=port_picker(os.environ.get("AUTH_TEST_PG_PORTS")),
    )
    out = "\n".join(f"--- {n}\n{o}" for n, o in trial.outputs.items())
    lock = trial.lock
    assert lock.outcome == "success", (lock, out)
    assert lock.agreeing == ["observer-1", "observer-2"], out
    # Both observers saw the death, then waited the whole window before one took the lock.
    assert set(trial.noticed) == {"observer-1", "observer-2"}, out
    assert all(t >= 0 for t in trial.noticed.values()), trial.noticed
    assert trial.t_detect >= max(trial.noticed.values()) + window, (trial.figures(), out)
    # Then: promoted, URL file rewritten, and only after that a write on the new primary. The
    # primary the quorum saw unreachable is neither probed nor fenced again: against a hung host
    # each would only wait for its connect timeout.
    assert [n.strip() for n, _ in lock.steps] == [
        "check standby",
        "promote standby",
        "repoint services",
        "verify test write",
    ]
    assert lock.finished_at is not None
    assert lock.finished_at > lock.taken_at
    assert trial.t_detect <= trial.url_file_changed <= trial.end_to_end, trial.figures()
    # The old primary acknowledged nothing once the decision was taken (commits in flight at the
    # kill may still be acknowledged by orphaned backends for a moment, after their WAL reached
    # the synchronous standby); the new one holds every write either acknowledged (RPO 0).
    assert trial.last_ack_old < trial.t_detect, trial.figures()
    assert trial.lost == [], trial.figures()
    for name, said in trial.outputs.items():
        assert "Traceback" not in said, f"{name}: {said}"
    print(f"\nFIGURES dr watch end to end: {trial.figures()}")
