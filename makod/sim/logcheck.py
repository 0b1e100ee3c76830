"""What each shard's chosen log proves, read by the world, apart from the replicas.

The world sees every chosen slot once, in slot order (world.observe_chosen),
and keeps its own reading of each shard's log, restating the rules of
docs/ARCHITECTURE.md ("Epochs and rollback") rather than calling the code
that implements them:

* an epoch's batches are numbered 1, 2, 3, ...; the versions an epoch's log
  proves replicated are those at or below the marker of the last batch
  before the first missing one;
* an epoch entry's verdict on the epoch before it (its FVW) must be exactly
  that: higher would cover versions that are gone, lower would roll back
  versions that were replicated and perhaps acknowledged;
* the coordinator records in chosen batches say which cross-shard
  transactions committed (unless an epoch verdict rolled them back); no
  replica may ever answer "abort" for one of those (checked at the end of a
  run, when every verdict is in: ``check_abort_answers``).
"""

from __future__ import annotations

from makod.core.membership import CONFIG_TAG
from makod.core.entries import ENTRY_BATCH, ENTRY_EPOCH, batch_seq, decode_entry
from makod.core.watermark import COVERED, EPOCH_SHIFT


class LogViolation(AssertionError):
    pass


class ShardLog:
    def __init__(self, seed: int, shard: int, num_shards: int) -> None:
        self.seed = seed
        self.shard = shard
        self.num_shards = num_shards
        self.epoch = 0
        self.next_seq = 1
        self.marker = 0
        self.gap = False
        self.records: dict[tuple, tuple] = {}  # txn -> deps, from chosen batches

    def read(self, slot: int, value: bytes) -> None:
        if value[:1] == CONFIG_TAG:
            return  # a membership change: no epoch, no batch
        entry = decode_entry(value)
        if entry is None:
            return
        if entry[0] == ENTRY_EPOCH:
            epoch, (closed, _below) = entry[1], entry[2]
            if epoch <= self.epoch:
                return  # a deposed leader's entry, re-proposed later: no effect
            if self.epoch:
                verdict = {int(e): f for e, f in closed.items()}.get(self.epoch)
                if verdict != self.marker:
                    raise LogViolation(
                        f"seed {self.seed}: shard {self.shard} slot {slot}: epoch {epoch} closes epoch "
                        f"{self.epoch} at {verdict}, but its chosen batches prove {self.marker} "
                        f"({'after a missing batch' if self.gap else 'no batch missing'})"
                    )
            self.epoch, self.next_seq, self.marker, self.gap = epoch, 1, epoch << EPOCH_SHIFT, False
            return
        if entry[0] != ENTRY_BATCH:
            return
        epoch, marker = entry[1], entry[2]
        for version, deps, _ops, record in entry[3]:
            if record is not None:
                if deps is None:
                    deps = [0] * self.num_shards
                    deps[self.shard] = version
                self.records[tuple(record[0])] = tuple(deps)
        if epoch != self.epoch or self.gap:
            return
        seq = batch_seq(entry)
        if seq is not None and seq != self.next_seq:
            self.gap = True
            return
        self.next_seq += 1
        self.marker = marker


def check_abort_answers(seed: int, world) -> None:
    """No replica answered "abort" for a transaction its coordinator committed."""
    judge = next((n for n in world.nodes.values() if n is not None), None)
    if judge is None:
        return
    for txn, src, when in world.abort_answers:
        coordinator_shard = world.shard_of_node.get(txn[0])
        log = world.logs.get(coordinator_shard)
        deps = log.records.get(txn) if log is not None else None
        if deps is None:
            continue
        if judge.core.wm.status(deps) == COVERED:
            raise LogViolation(
                f"seed {seed}: n{src} answered 'abort' at {when:.1f} ms for transaction {txn}, "
                f"which shard {coordinator_shard} committed (its record is chosen, its versions replicated)"
            )
