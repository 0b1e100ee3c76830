"""What this node knows of every shard's replication watermark, across epochs.

A version (a shard clock) is ``epoch << 32 | counter``; the epoch is the
ballot of the leader that handed it out. For each shard we keep the current
epoch and its watermark ``w`` (every version of that shard at or below ``w``
is in a chosen Paxos slot), and for each epoch that ended, its finalized
watermark (FVW): the new leader's verdict on what of the old epoch survived.

``status(deps)`` then says, for a transaction's version vector:

* COVERED: every component is replicated (the reply may be released, a
  follower may apply it);
* ROLLED_BACK: some component belongs to an ended epoch and lies above that
  epoch's FVW: the transaction is undone everywhere and never reported as done;
* PENDING: not yet known.

Pitfalls from the C++ code's own model-checking notes: watermarks only ever
grow (take max of what we hear, never replace with an older value) and
combine across shards with min, never max; an idle shard still advances
(its watermark is its clock when nothing is in flight).
"""

from __future__ import annotations

EPOCH_SHIFT = 32

COVERED = 1
PENDING = 0
ROLLED_BACK = -1


def epoch_of(version: int) -> int:
    return version >> EPOCH_SHIFT


class ShardMark:
    __slots__ = ("epoch", "w", "closed", "closed_below")

    def __init__(self) -> None:
        self.epoch = 0
        self.w = 0
        self.closed: dict[int, int] = {}  # ended epoch -> FVW
        # Every epoch below this one has ended; those not in ``closed`` left
        # nothing behind (a leader that died before any slot was chosen).
        self.closed_below = 0


class WatermarkTable:
    def __init__(self, num_shards: int) -> None:
        self.shards = [ShardMark() for _ in range(num_shards)]
        self.version = 0  # bumps on every change, so waiters know to look again
        # Bumps only when an epoch verdict may have changed (a new epoch, an
        # FVW, closed_below): the only changes that can turn a transaction
        # ROLLED_BACK. Plain watermark advances (most messages) leave it.
        self.verdicts = 0

    def add_shards(self, num_shards: int) -> None:
        """Shards were added to the cluster (makoctl cluster add-shard)."""
        assert num_shards >= len(self.shards), (num_shards, len(self.shards))
        while len(self.shards) < num_shards:
            self.shards.append(ShardMark())
        self.version += 1

    # -- learning ----------------------------------------------------------------------
    def observe(
        self, shard: int, epoch: int, w: int, closed: dict[int, int] | None = None, closed_below: int = 0
    ) -> bool:
        """Record what shard ``shard``'s leader published; True if anything moved."""
        mark = self.shards[shard]
        changed = False
        if closed_below > mark.closed_below:
            mark.closed_below = closed_below
            changed = verdict = True
        else:
            verdict = False
        if closed:
            for e, fvw in closed.items():
                e = int(e)
                if e not in mark.closed:
                    mark.closed[e] = fvw
                    changed = verdict = True
                else:
                    assert mark.closed[e] == fvw, (
                        f"shard {shard} epoch {e} finalized twice: {mark.closed[e]} then {fvw}"
                    )
        if epoch > mark.epoch:
            mark.epoch = epoch
            # Counters start at 1, so epoch << 32 itself covers nothing real.
            mark.w = max(w, epoch << EPOCH_SHIFT)
            changed = verdict = True
        elif epoch == mark.epoch and w > mark.w:
            mark.w = w
            changed = True
        if changed:
            self.version += 1
        if verdict:
            self.verdicts += 1
        return changed

    # -- judging ------------------------------------------------------------------------
    def component(self, shard: int, c: int) -> int:
        if c == 0:
            return COVERED
        if shard >= len(self.shards):
            return PENDING  # a shard added since this node last read the topology
        mark = self.shards[shard]
        e = c >> EPOCH_SHIFT
        if e == mark.epoch:
            return COVERED if c <= mark.w else PENDING
        if e < mark.epoch:
            fvw = mark.closed.get(e)
            if fvw is None:
                if e < mark.closed_below:
                    return ROLLED_BACK  # an epoch that ended with nothing chosen
                return PENDING  # the epoch ended but its verdict has not reached us yet
            return COVERED if c <= fvw else ROLLED_BACK
        return PENDING  # an epoch we have not heard of yet

    def status(self, deps: tuple[int, ...]) -> int:
        result = COVERED
        for shard, c in enumerate(deps):
            if c == 0:
                continue
            s = self.component(shard, c)
            if s == ROLLED_BACK:
                return ROLLED_BACK
            if s == PENDING:
                result = PENDING
        return result

    def covers(self, deps: tuple[int, ...]) -> bool:
        return self.status(deps) == COVERED

    def snapshot(self, shard: int) -> tuple[int, int, dict[int, int], int]:
        mark = self.shards[shard]
        return mark.epoch, mark.w, dict(mark.closed), mark.closed_below
