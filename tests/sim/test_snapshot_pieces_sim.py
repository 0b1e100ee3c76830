"""Snapshots cut into 8-byte pieces under harsh faults: every record a
snapshot carries travels in pieces, and the run's invariants (replicas
converge, nothing acknowledged lost) must still hold."""

from __future__ import annotations

import makod.driver
from makod.core import snapshots
from makod.sim.runner import run_seed, shape_for


def test_snapshots_in_pieces_install_and_converge(monkeypatch):
    monkeypatch.setattr(makod.driver, "SNAPSHOT_CHUNK_BYTES", 8)
    receive = snapshots.SnapshotReceiver.receive
    seen = {"pieces": 0, "installed": 0}

    def counting(self, msg, applied_slot):
        seen["pieces"] += sum(1 for item in msg.items if len(item) == 3)
        got = receive(self, msg, applied_slot)
        seen["installed"] += got is not None
        return got

    monkeypatch.setattr(snapshots.SnapshotReceiver, "receive", counting)
    for seed in range(1, 9):
        run_seed(seed, profile="harsh", **shape_for(seed))
    assert seen["installed"] >= 5 and seen["pieces"] >= 500, seen
