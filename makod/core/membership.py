"""A shard's membership (voters and learners) as replicated state: the
``CONFIG`` log entry that changes it, and the rules a change must follow
(docs/MEMBERSHIP.md, step 2).

A ``CONFIG`` entry at slot s governs the slots after s: slots up to s are
decided by the voters in force before it, slots above s by its voters. A
leader proposes one change at a time and sends no slot above a pending
change until the change is chosen (alpha = 1), and a change moves at most
one voter, so any majority of the old voters meets any majority of the new.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import msgpack

from makod.codec import pack

# 0xc1 is the one byte msgpack never writes, so no batch, epoch entry or
# no-op (empty) value starts with it: a CONFIG entry is told apart by its
# first byte, without decoding anything else.
CONFIG_TAG = b"\xc1"
MAX_NODE_ID = 255  # ballots are round * 256 + node id


@dataclass(frozen=True)
class Membership:
    voters: tuple[int, ...]
    learners: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        assert self.voters, "a membership needs a voter"
        assert not set(self.voters) & set(self.learners), self
        assert list(self.voters) == sorted(set(self.voters)), self
        assert list(self.learners) == sorted(set(self.learners)), self

    @classmethod
    def of(cls, voters, learners=()) -> "Membership":
        return cls(tuple(sorted(set(voters))), tuple(sorted(set(learners))))

    @property
    def quorum(self) -> int:
        return len(self.voters) // 2 + 1

    @property
    def nodes(self) -> tuple[int, ...]:
        return self.voters + self.learners

    def to_list(self) -> list:
        return [list(self.voters), list(self.learners)]

    @classmethod
    def from_list(cls, data) -> "Membership":
        voters, learners = data
        return cls.of(voters, learners)


class Change(NamedTuple):
    """A CONFIG entry: ``new``, built from ``prev`` (the membership in force
    when it was proposed). It takes effect only if ``prev`` is still in force
    where it is chosen; otherwise it reads as a no-op. An old change that a
    later leader re-proposes after other changes were chosen would move more
    than one voter at once, or bring a removed replica back."""

    prev: Membership
    new: Membership

    def applied_to(self, current: Membership) -> Membership:
        return self.new if self.prev == current else current


def encode_config(new: Membership, prev: Membership) -> bytes:
    return CONFIG_TAG + pack(new.to_list() + prev.to_list())


def is_config(value: bytes) -> bool:
    return value[:1] == CONFIG_TAG


def decode_config(value: bytes) -> Change | None:
    """The change a CONFIG entry holds; None for any other value (or a
    malformed one, which every replica then reads alike as a no-op)."""
    if value[:1] != CONFIG_TAG:
        return None
    try:
        data = msgpack.unpackb(value[1:], raw=False, max_array_len=1024, max_map_len=0)
        new_voters, new_learners, prev_voters, prev_learners = data
        return Change(_members(prev_voters, prev_learners), _members(new_voters, new_learners))
    except Exception:  # noqa: BLE001  (any malformed bytes: not a config)
        return None


def _members(voters, learners) -> Membership:
    ids = list(voters) + list(learners)
    if not voters or not all(type(i) is int and 0 <= i <= MAX_NODE_ID for i in ids) or len(set(ids)) != len(ids):
        raise ValueError("not a membership")
    return Membership.of(voters, learners)


def change_error(old: Membership, new: Membership) -> str | None:
    """Why ``old`` may not become ``new`` in one step (None: it may)."""
    if not new.voters:
        return "a shard needs at least one voter"
    if set(old.voters) ^ set(new.voters) and len(set(old.voters) ^ set(new.voters)) > 1:
        return "a change may add or remove at most one voter"
    if new == old:
        return "the membership would not change"
    return None


class MembershipLog:
    """The Paxos mixin that keeps a shard's membership from its log.

    ``base`` is the membership in force after the chosen prefix
    (``commit``); ``configs`` holds the CONFIG entries this replica's log has
    above it, by slot. Slot s+1 is governed by the last CONFIG at or below s.
    The derived ``voters``, ``learners``, ``quorum`` and ``is_voter`` are
    those of the newest membership in the log (a replica acts on a change as
    soon as it holds it, as in Raft); counting for a slot uses the one that
    governs it.
    """

    def _init_members(self, base: Membership, chosen_upto: int) -> None:
        self.base = base
        self.configs: dict[int, Change] = {}
        for slot, (_ballot, value) in self.log.items():
            if slot > chosen_upto:
                self._note_value(slot, value)
        self._derive()

    def memberships(self) -> list[Membership]:
        """The membership in force, then the one after each pending change, in slot order."""
        if not self.configs:
            return [self.base]
        out = [self.base]
        for slot in sorted(self.configs):
            out.append(self.configs[slot].applied_to(out[-1]))
        return out

    def _derive(self) -> None:
        memberships = self.memberships()
        latest = memberships[-1]
        self.voters = list(latest.voters)
        self.learners = list(latest.learners)
        self.quorum = latest.quorum
        self.is_voter = self.id in latest.voters
        nodes = set(self.base.nodes)
        for change in self.configs.values():
            nodes.update(change.new.nodes)
        nodes.discard(self.id)
        self.peer_ids = sorted(nodes)
        self.all_voters = sorted({v for m in memberships for v in m.voters})

    def _note_value(self, slot: int, value: bytes) -> bool:
        """Log slot ``slot`` now holds ``value`` (above the chosen prefix):
        track it if it is a CONFIG entry. True if the memberships changed."""
        change = decode_config(value) if value[:1] == CONFIG_TAG else None
        if change is not None:
            if self.configs.get(slot) == change:
                return False
            self.configs[slot] = change
            return True
        return self.configs.pop(slot, None) is not None

    def _fold_chosen(self) -> None:
        """``commit`` moved: every CONFIG at or below it is now in force."""
        if not self.configs:
            return
        chosen = sorted(s for s in self.configs if s <= self.commit)
        if not chosen:
            return
        for slot in chosen:
            self.base = self.configs.pop(slot).applied_to(self.base)
        self._members_changed()
        if self.role == "leader":
            # alpha = 1 held back the slots after the change: send them now.
            for peer in self.peer_ids:
                self._send_entries(peer)

    def _members_changed(self) -> None:
        # (Imported here: paxos_election imports this module for CONFIG_TAG.)
        from makod.core.paxos_election import CANDIDATE, FOLLOWER, LEADER, LEARNER

        self._derive()
        if self.role == LEARNER and self.is_voter:
            self.role = FOLLOWER
            self.role_reason = "became a voter"
            if self._timer_started:
                self._reset_election_timer()
        elif self.role in (FOLLOWER, CANDIDATE) and not self.is_voter:
            if self.role == CANDIDATE:
                self.role_reason = "no longer a voter"
                self._step_down(leader=None)
            self.role = LEARNER
        elif self.role == LEADER:
            for peer in self.peer_ids:
                if peer not in self.next:
                    self.next[peer] = self.last_slot + 1
                    self.match[peer] = 0
            for peer in [p for p in self.next if p not in self.peer_ids]:
                for table in (self.next, self.match, self.ack_sent_ms, self.snapshot_sent_ms):
                    table.pop(peer, None)
            # The lease rests on the memberships now counted: work it out anew
            # (lowering a lease is always safe).
            self.lease_until = -float("inf")
            self._update_lease()
            if not self.is_voter and not self.configs:
                self.role_reason = "removed from the voters"
                self._step_down(leader=None)

    def _send_limit(self) -> int:
        """The last slot a leader may send: alpha = 1, nothing above a pending change."""
        if self.configs:
            return min(self.configs)
        return self.last_slot

    def _quorum_time(self) -> float:
        """The newest time by which a majority of every membership in force or
        pending had acknowledged this leader (now for itself)."""
        newest = float("inf")
        for members in self.memberships():
            times = sorted(
                (self.now if peer == self.id else self.ack_sent_ms.get(peer, -float("inf")))
                for peer in members.voters
            )
            newest = min(newest, times[len(times) - members.quorum])
        return newest

    def _alone(self) -> bool:
        """Is this replica the only voter of every membership in the log?"""
        return self.all_voters == [self.id]

    def propose_membership(self, new: Membership) -> str | None:
        """Propose a CONFIG entry; returns why not (None: proposed)."""
        if self.role != "leader":
            return "not the leader"
        if self.transfer_target is not None:
            return "a leadership handover is under way"
        if self.configs:
            return "the previous membership change is not chosen yet"
        if self.commit <= self.leader_since_slot:
            # Raft's rule for one-at-a-time changes: a new leader's first own
            # entry must be chosen before it changes anything.
            return "this leader has no entry of its own chosen yet"
        reason = change_error(self.base, new)
        if reason is not None:
            return reason
        if self.id not in new.voters:
            return "a leader cannot remove itself: hand leadership over first"
        value = encode_config(new, self.base)
        self.last_slot += 1
        slot = self.last_slot
        self.log[slot] = (self.promised, value)
        self._ready.entries.append((slot, self.promised, value))
        self.configs[slot] = Change(self.base, new)
        self._members_changed()
        for peer in self.peer_ids:
            self._send_entries(peer)
        return None
