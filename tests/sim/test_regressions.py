"""One scripted scenario per safety bug of the issue "Safety under faults"
(tests/sim/scenarios.py). Each must pass as the code is, and must fail with
the bug's cause put back (makod/sim/planted.py): so each test is known to
catch what it names, and the fix is known to be what makes it pass."""

from __future__ import annotations

import pytest

from makod.sim.planted import planted
from tests.sim import scenarios

CASES = [
    ("epoch-gap", scenarios.epoch_gap, ()),
    ("tombstone-deps", scenarios.tombstone, ("blind-set",)),
    ("tombstone-deps", scenarios.tombstone, ("read",)),
    ("restart-vote", scenarios.lease_after_restart, ()),
    ("preferred-timer", scenarios.lease_preferred_timer, ()),
    ("txn-read-lease", scenarios.txn_read_lease, ()),
    ("snapshot-marks", scenarios.snapshot_verdicts, ()),
    ("coord-records", scenarios.coordinator_records, ()),
    ("forward-ballot", scenarios.forward_late_duplicate, ()),
    ("forward-ballot", scenarios.forward_bounced, ()),
    ("stale-prepare", scenarios.stale_prepare, ("mako",)),
    ("stale-prepare", scenarios.stale_prepare, ("2pc-paxos",)),
    ("reshard-no-lock-wait", scenarios.reshard_export_waits, ()),
    ("reshard-export-not-final", scenarios.reshard_export_final, ()),
]
IDS = [f"{bug}:{fn.__name__}{'-' + args[0] if args else ''}" for bug, fn, args in CASES]


@pytest.mark.parametrize("bug, scenario, args", CASES, ids=IDS)
def test_the_promise_holds(bug, scenario, args):
    scenario(*args)


@pytest.mark.parametrize("bug, scenario, args", CASES, ids=IDS)
def test_the_scenario_catches_the_bug(bug, scenario, args):
    with planted(bug):
        with pytest.raises(AssertionError):
            scenario(*args)


def test_a_forward_keeps_its_answer_across_a_handover():
    # Before forwards waited for the old leader's answer, this failed with
    # CLUSTERDOWN "outcome unknown" for a write that had succeeded.
    scenarios.forward_across_handover()
