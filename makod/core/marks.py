"""What a checkpoint or snapshot keeps of a shard's log besides its keys:
``[epoch chain, closed epochs' verdicts, closed_below, evicted records'
epoch, membership]`` (ReplicaCore.marks). Older files have fewer fields."""

from __future__ import annotations

from makod.core.epochs import EpochChain
from makod.core.membership import Membership


def read_marks(marks: list | None, applied_slot: int) -> tuple[EpochChain, dict[int, int], int, int]:
    """(chain, closed epochs' verdicts, closed_below, evicted records' epoch) from stored marks."""
    if not marks:
        return EpochChain(), {}, 0, 0
    if not isinstance(marks[0], list):
        # Written before the chain existed: [epoch, w, closed, closed_below].
        epoch, w, closed, closed_below = marks
        return EpochChain(applied_slot, epoch, 0, w), {int(e): f for e, f in closed.items()}, closed_below, 0
    chain, closed, closed_below, evicted_epoch = marks[:4]
    return EpochChain.from_list(chain), {int(e): f for e, f in closed.items()}, closed_below, evicted_epoch


def read_members(marks: list | None) -> Membership | None:
    """The membership stored with the marks (None: written before membership changes)."""
    if not marks or len(marks) < 5:
        return None
    return Membership.from_list(marks[4])
