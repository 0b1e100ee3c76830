"""This shard's epochs as its chosen log tells them, read in slot order.

Every leader's first slot is its *epoch entry*; after it, the leader proposes
batches numbered 1, 2, 3, ... within its epoch, each with a *marker*: every
version of the epoch at or below the marker is in that batch or an earlier
one of the same epoch. A marker says nothing about versions in batches that
never made it into the log, and some do not: a new leader fills the slots no
quorum accepted with no-ops, yet may re-propose a later batch that one
acceptor held. So a marker is believed only while the epoch's batches arrive
without a gap; after a gap the epoch's watermark stops where the gap began,
and whatever was installed above it is rolled back when the epoch closes.

A new leader first gets every slot it re-proposes chosen and read, then
writes its epoch entry, whose verdict on the epoch before it (the finalized
watermark, FVW) is this chain's marker: a verdict derived from chosen slots
only, the same on every replica, which each replica checks when it reads the
entry. Entries of a leader older than the chain's epoch (a deposed leader's
slot that a later leader re-proposed) are read as no-ops.

The chain is part of every checkpoint and snapshot, and reading a slot it
has already read (a replay after a restart) changes nothing.
"""

from __future__ import annotations

from makod.core.watermark import EPOCH_SHIFT


class EpochChain:
    __slots__ = ("slot", "epoch", "seq", "marker", "broken")

    def __init__(self, slot: int = 0, epoch: int = 0, seq: int = 0, marker: int = 0, broken: bool = False) -> None:
        self.slot = slot  # the last slot read
        self.epoch = epoch  # the epoch of the last epoch entry read
        self.seq = seq  # the last batch of that epoch read with no gap before it
        self.marker = marker  # that batch's marker: the epoch's watermark
        self.broken = broken  # a batch of the epoch is missing: no later marker counts

    # -- reading chosen slots in order --------------------------------------------------------
    def read_noop(self, slot: int) -> None:
        if slot > self.slot:
            self.slot = slot

    def read_epoch(self, slot: int, epoch: int, closed: dict[int, int]) -> bool:
        """An epoch entry; True if it starts a new epoch (its verdicts then hold)."""
        if slot <= self.slot:
            return False  # read before this restart
        self.slot = slot
        if epoch <= self.epoch:
            return False  # a stale leader's entry re-proposed by a later one
        if self.epoch:
            assert closed.get(self.epoch) == self.marker, (
                f"slot {slot}: epoch {epoch}'s entry closes epoch {self.epoch} at {closed.get(self.epoch)}, "
                f"but the log says {self.marker}"
            )
        self.epoch = epoch
        self.seq = 0
        self.marker = epoch << EPOCH_SHIFT
        self.broken = False
        return True

    def read_batch(self, slot: int, epoch: int, seq: int | None, marker: int) -> bool:
        """A batch; True if its marker now counts as the epoch's watermark."""
        if slot <= self.slot:
            return False
        self.slot = slot
        if epoch != self.epoch:
            assert epoch < self.epoch, f"slot {slot}: a batch of epoch {epoch} before its epoch entry"
            return False  # a stale leader's batch: its versions lie above that epoch's verdict
        if self.broken:
            return False
        if seq is None:
            seq = self.seq + 1  # written before batches were numbered
        if seq != self.seq + 1:
            assert seq > self.seq, f"slot {slot}: batch {seq} of epoch {epoch} again"
            self.broken = True
            return False
        self.seq = seq
        assert marker >= self.marker, f"slot {slot}: epoch {epoch}'s marker went back"
        self.marker = marker
        return True

    # -- what a new leader's epoch entry says ---------------------------------------------------
    def verdict(self) -> dict[int, int]:
        """{epoch: FVW} for the epoch this chain is in (none before the first epoch)."""
        return {self.epoch: self.marker} if self.epoch else {}

    # -- persistence -------------------------------------------------------------------------
    def to_list(self) -> list:
        return [self.slot, self.epoch, self.seq, self.marker, self.broken]

    @classmethod
    def from_list(cls, data: list) -> "EpochChain":
        slot, epoch, seq, marker, broken = data
        return cls(slot, epoch, seq, marker, bool(broken))

    def copy(self) -> "EpochChain":
        return EpochChain(*self.to_list())

    def __repr__(self) -> str:
        return f"EpochChain(slot={self.slot}, epoch={self.epoch}, seq={self.seq}, marker={self.marker}, broken={self.broken})"
