"""Multi-Paxos for one shard, as a pure state machine.

Inputs: ``tick(now_ms)``, ``step(message)``, ``propose(value)``,
``transfer_leadership(target)``, ``snapshot_installed(slot)``,
``compacted(slot)``. Output: ``ready()`` hands back a ``Ready``: the promised
ballot and log entries to persist (and sync), messages to send, and newly
chosen entries to apply, in slot order. The driver persists BEFORE it sends,
then calls ``advance(ready)``. No sockets, no clock, no global randomness.

The protocol (DESIGN.md, "Replication"):

* Ballots are ``round * 256 + replica``. A candidate runs phase 1 once for
  every slot above its chosen prefix; acceptors answer with what they have
  accepted there. The new leader re-proposes, under its own ballot, the
  highest-ballot value of every such slot and fills holes with no-ops (an
  empty value).
* Phase 2 streams contiguous ranges of slots to each follower. A follower's
  ``match`` is the highest slot m such that every slot up to m is chosen or
  accepted in the current ballot; a slot is chosen when a majority of voters
  (the leader included, once its own copy is persisted) have match >= slot.
* Followers that heard from a live leader within the election timeout refuse
  to promise anyone else, themselves included (unless the leader itself hands
  over leadership); a replica that (re)starts refuses for one election
  timeout, since it cannot know whom it acknowledged just before. That gives
  the leader a lease: after a majority acknowledged a message sent at time t,
  no other leader can exist before t + election timeout, so reads served on
  the lease are linearizable. Each replica judges these spans on its own
  clock; the lease is ``lease_fraction`` of the timeout, which covers clock
  rates that differ by up to 5% (docs/ARCHITECTURE.md, "Clocks").
* A leader that has not heard from a majority for an election timeout steps
  down (check quorum).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

from makod.core.membership import CONFIG_TAG, Membership, MembershipLog
from makod.core.paxos_election import (  # noqa: F401  (the roles: re-exported)
    CANDIDATE, FOLLOWER, INF_MS, LEADER, LEARNER, NOOP, Election,
)
from makod.core.messages import (
    Accept,
    Accepted,
    Message,
    Prepare,
    Promise,
    TimeoutNow,
    ballot_node,
    ballot_round,
)



# How far past its chosen prefix a replica stores accepted slots.
MAX_SLOTS_AHEAD = 1 << 20


@dataclass
class PaxosConfig:
    election_timeout_ms: int = 800
    heartbeat_ms: int = 100
    # Per follower: slots sent but not yet acknowledged. Bounds memory and the
    # size of a new leader's phase 1.
    max_inflight_slots: int = 256
    # Per Accept message.
    max_values_per_accept: int = 64
    max_bytes_per_accept: int = 4 * 1024 * 1024
    # Per follower: bytes sent but not yet acknowledged. Without this bound a
    # burst of big slots queues megabytes on the link, and heartbeats and
    # acknowledgements wait behind them until check-quorum deposes the leader.
    max_inflight_bytes: int = 8 * 1024 * 1024
    # An acceptor holding more unchosen entries than this above a candidate's
    # prefix tells it that it is too far behind to lead.
    max_promise_entries: int = 4096
    # ... or more bytes than this: a Promise travels in one peer frame (256 MB
    # at most), and one a peer refused would be lost at every try. A candidate
    # near the head needs only the unchosen tail, far less (inflight batches).
    max_promise_bytes: int = 128 * 1024 * 1024
    # Committed entries handed out per ready(), so one ready stays small.
    max_committed_per_ready: int = 64
    # Lease length as a share of the election timeout (margin for clock rate).
    lease_fraction: float = 0.9


@dataclass
class Ready:
    promised: int | None = None  # persist this promised ballot
    entries: list[tuple[int, int, bytes]] = field(default_factory=list)  # (slot, ballot, value)
    messages: list[tuple[int, Message]] = field(default_factory=list)  # (replica id, message)
    committed: list[tuple[int, bytes]] = field(default_factory=list)  # (slot, value), in order
    snapshot_to: list[int] = field(default_factory=list)  # followers the leader's log no longer covers

    @property
    def must_sync(self) -> bool:
        return self.promised is not None or bool(self.entries)

    def empty(self) -> bool:
        return not (
            self.promised is not None
            or self.entries
            or self.messages
            or self.committed
            or self.snapshot_to
        )


class Paxos(Election, MembershipLog):
    def __init__(
        self,
        shard: int,
        node_id: int,
        voters: list[int],
        learners: list[int],
        config: PaxosConfig,
        rng: random.Random,
        promised: int = 0,
        log: dict[int, tuple[int, bytes]] | None = None,
        chosen_upto: int = 0,
        preferred: int | None = None,
    ) -> None:
        # voters, learners: the membership in force after ``chosen_upto`` (a
        # replica that is in neither, e.g. one just added, is a learner until
        # a CONFIG entry makes it a voter: membership.py).
        assert not set(voters) & set(learners)
        self.shard = shard
        self.id = node_id
        self.cfg = config
        self.rng = rng

        # Persistent (the driver wrote them; we were handed them back).
        self.promised = promised
        self.log: dict[int, tuple[int, bytes]] = dict(log or {})
        # chosen_upto: the prefix known chosen at startup (the applied index
        # the state machine recovered); entries at or below it may be gone.
        self.commit = chosen_upto
        # Entries at or below the chosen prefix are kept only for lagging
        # peers, so they must run without a hole up to it. A crash can leave
        # one: a slot that arrived late (out of order) was applied and
        # checkpointed from memory while its own log write was still in flight
        # and lost. Keep the run that ends at chosen_upto; what lies below a
        # hole is applied and checkpointed, so it is only dropped.
        below = chosen_upto
        while below >= 1 and below in self.log:
            below -= 1
        for slot in [s for s in self.log if s <= below]:
            del self.log[slot]
        self.first_slot = below + 1
        self.last_slot = max(max(self.log) if self.log else 0, chosen_upto)
        self.handed = chosen_upto  # committed entries given to the state machine
        self._init_members(Membership.of(voters, learners), chosen_upto)

        self.role = FOLLOWER if self.is_voter else LEARNER
        self.leader: int | None = None
        self.max_round_seen = ballot_round(promised)
        self.now = 0.0
        self.last_heard_leader = -INF_MS
        self.election_deadline = 0.0  # set on the first tick
        self._timer_started = False
        # No vote (for anyone, ourselves included) before this: set at the
        # first tick, because a replica that just restarted cannot know whether
        # it acknowledged a leader whose lease is still running.
        self.vote_fence_until = INF_MS

        # Follower: the trusted prefix in the promised ballot (see module doc).
        self.accepted_upto = chosen_upto

        # Candidate.
        self.promises: dict[int, Promise] = {}
        self.asked: set[int] = set()  # the voters sent our Prepare
        self.transfer_campaign = False

        # Leader.
        self.next: dict[int, int] = {}
        self.match: dict[int, int] = {}
        self.self_match = 0  # persisted prefix of the leader's own log
        self.seq = 0
        self.seq_sent_ms: dict[int, float] = {}
        self.ack_sent_ms: dict[int, float] = {}  # per replica: send time of newest acked message
        self.heartbeat_due = 0.0
        self.lease_until = -INF_MS
        self.leader_since_slot = 0  # last slot re-proposed at election: the epoch boundary
        self.transfer_target: int | None = None
        self.transfer_why = ""
        self.transfer_deadline = 0.0
        self.snapshot_sent_ms: dict[int, float] = {}
        # The replica that should lead when it can (in the leaders' datacenter,
        # so cross-shard certification between leaders stays local).
        self.preferred = preferred
        self.leader_since_ms = 0.0
        # Set by the replica above: True once nothing it did is still in doubt,
        # so a handover leaves no client with an unknown outcome.
        self.transfer_gate: Callable[[], bool] = lambda: True
        # Why the role last changed, for the driver's log ("replica N" names a
        # replica by id; the host shows its name).
        self.role_reason = ""

        self._ready = Ready()
        self._check()

    # -- invariants ------------------------------------------------------------------
    def _check(self) -> None:
        assert self.handed <= self.commit <= self.last_slot, (self.handed, self.commit, self.last_slot)
        assert self.first_slot <= self.commit + 1, (self.first_slot, self.commit)
        if self.role == LEADER:
            assert ballot_node(self.promised) == self.id
            # A leader leaves only once its removal is chosen (membership.py).
            assert self.is_voter or self.configs
        assert all(slot > self.commit for slot in self.configs), (self.commit, sorted(self.configs))

    # -- inputs ------------------------------------------------------------------------
    def tick(self, now_ms: float) -> None:
        assert now_ms >= self.now, "time went backwards"
        self.now = now_ms
        if not self._timer_started:
            self._timer_started = True
            self.vote_fence_until = now_ms + self.cfg.election_timeout_ms
            self._reset_election_timer()
            if self.is_voter and self._alone():
                self._campaign(transfer=False)
            return
        if self.role == LEADER:
            if now_ms >= self.heartbeat_due:
                self._broadcast(heartbeat=True)
            if not self._quorum_alive():
                ages = ", ".join(f"replica {p} {now_ms - t:.0f} ms ago" for p, t in self.ack_sent_ms.items() if p != self.id)
                self.role_reason = f"lost quorum: last acknowledgements {ages}"
                self._step_down(leader=None)
                return
            if self.transfer_target is not None and now_ms >= self.transfer_deadline:
                self.transfer_target = None
                self.leader_since_ms = now_ms  # back off before trying again
            self._maybe_finish_transfer()
            self._return_to_preferred()
        elif self.is_voter and now_ms >= self.election_deadline:
            if self._may_campaign():
                heard = now_ms - self.last_heard_leader
                self.role_reason = (f"heard no leader for {heard:.0f} ms" if heard < INF_MS
                                    else "no leader heard since start")
                self._campaign(transfer=False)
            else:
                # Not yet allowed (a leader's lease may rest on us): try again
                # as soon as it is, plus a little, not a whole new timeout later.
                allowed = max(self.vote_fence_until, self.last_heard_leader + self.cfg.election_timeout_ms)
                if allowed > now_ms:
                    self.election_deadline = allowed + self.cfg.heartbeat_ms * self.rng.random()
                else:
                    self._reset_election_timer()

    def step(self, msg: Message) -> None:
        ballot = getattr(msg, "ballot", 0)
        self.max_round_seen = max(self.max_round_seen, ballot_round(ballot))
        t = type(msg)
        if t is Accept:
            self._on_accept(msg)  # type: ignore[arg-type]
        elif t is Accepted:
            self._on_accepted(msg)  # type: ignore[arg-type]
        elif t is Prepare:
            self._on_prepare(msg)  # type: ignore[arg-type]
        elif t is Promise:
            self._on_promise(msg)  # type: ignore[arg-type]
        elif t is TimeoutNow:
            if self.is_voter and msg.ballot == self.promised and self.role != LEADER:
                self.role_reason = f"replica {msg.src} handed leadership over"
                self._campaign(transfer=True)
        else:
            raise AssertionError(f"paxos cannot step {msg!r}")
        self._check()

    def propose(self, value: bytes) -> int | None:
        """Append ``value`` at the next slot; None when this replica may not propose.

        A leader handing over still proposes what it already took on (the
        replica above admits no new work meanwhile): that is how it drains.
        """
        if self.role != LEADER:
            return None
        assert value[:1] != CONFIG_TAG, "membership changes go through propose_membership"
        self.last_slot += 1
        slot = self.last_slot
        self.log[slot] = (self.promised, value)
        self._ready.entries.append((slot, self.promised, value))
        for peer in self.peer_ids:
            self._send_entries(peer)
        return slot

    def transfer_leadership(self, target: int, why: str = "asked to (MAKO FAILOVER)") -> bool:
        if self.role != LEADER or target == self.id or target not in self.voters:
            return False
        self.transfer_target = target
        self.transfer_why = why
        self.transfer_deadline = self.now + self.cfg.election_timeout_ms
        self._maybe_finish_transfer()
        return True

    def set_preferred(self, node_id: int | None) -> None:
        """Which voter should lead when it can (None: no preference). Only
        liveness depends on it: who campaigns first, whom a leader hands over
        to once that replica has caught up (``_return_to_preferred``)."""
        # Not asserted to be a voter: membership changes (membership.py); a
        # preferred replica that is not a voter is simply never handed to.
        self.preferred = node_id

    def snapshot_installed(self, slot: int, members: Membership | None = None) -> None:
        """The driver replaced this replica's state with a snapshot taken at
        ``slot``; ``members``: the membership in force there (None: unchanged)."""
        if slot <= self.commit:
            return
        for s in [s for s in self.log if s <= slot]:
            del self.log[s]
        self.commit = slot
        self.handed = slot
        self.accepted_upto = max(self.accepted_upto, slot)
        self.first_slot = slot + 1
        self.last_slot = max(self.last_slot, slot)
        if members is not None:
            self.base = members
        for s in [s for s in self.configs if s <= slot]:
            del self.configs[s]
        self._members_changed()
        self._check()

    def compacted(self, slot: int) -> None:
        """The driver removed log entries up to ``slot`` (they are applied and checkpointed)."""
        assert slot <= self.handed, "compacting entries the state machine has not applied"
        for s in range(self.first_slot, slot + 1):
            self.log.pop(s, None)
        self.first_slot = max(self.first_slot, slot + 1)

    # -- outputs -------------------------------------------------------------------------
    def ready(self) -> Ready:
        if self.handed < self.commit:
            upto = min(self.commit, self.handed + self.cfg.max_committed_per_ready)
            committed = self._ready.committed
            for slot in range(self.handed + 1, upto + 1):
                committed.append((slot, self.log[slot][1]))
            self.handed = upto
        ready, self._ready = self._ready, Ready()
        return ready

    def advance(self, ready: Ready) -> None:
        """The driver persisted ``ready``'s entries and promise."""
        if self.role == LEADER and ready.entries:
            top = max((slot for slot, ballot, _ in ready.entries if ballot == self.promised), default=0)
            if top > self.self_match:
                self.self_match = top
                self._advance_commit()

    @property
    def has_ready(self) -> bool:
        return not self._ready.empty() or self.handed < self.commit

    # -- queries ----------------------------------------------------------------------------
    def lease_valid(self) -> bool:
        return self.role == LEADER and self.transfer_target is None and self.now < self.lease_until

    def known_leader(self) -> int | None:
        return self.id if self.role == LEADER else self.leader

    def follower_progress(self) -> dict[int, int]:
        return dict(self.match) if self.role == LEADER else {}

    # -- replication: leader ------------------------------------------------------------------
    def _peers(self) -> list[int]:
        return self.peer_ids

    def _broadcast(self, heartbeat: bool) -> None:
        for peer in self.peer_ids:
            self._send_entries(peer, heartbeat=heartbeat)
        if heartbeat:
            self.heartbeat_due = self.now + self.cfg.heartbeat_ms

    def _send_entries(self, peer: int, heartbeat: bool = False) -> None:
        """Send the next window of entries to ``peer`` (or an empty heartbeat)."""
        nxt = self.next[peer]
        if nxt < self.first_slot:
            # Our log no longer reaches back that far: the driver streams a
            # snapshot; meanwhile keep the follower's timer quiet.
            last = self.snapshot_sent_ms.get(peer, -INF_MS)
            if self.now - last >= self.cfg.election_timeout_ms * 4:
                self.snapshot_sent_ms[peer] = self.now
                self._ready.snapshot_to.append(peer)
            if heartbeat:
                self._send_accept(peer, self.first_slot, [])
            return
        inflight = nxt - 1 - self.match[peer]
        room = self.cfg.max_inflight_slots - inflight
        # Bytes in flight: the slots sent and not yet acknowledged.
        log = self.log
        inflight_bytes = sum(len(log[s][1]) for s in range(max(self.match[peer] + 1, self.first_slot), nxt) if s in log)
        values: list[bytes] = []
        size = 0
        slot = nxt
        last = self._send_limit()
        while (
            slot <= last
            and len(values) < min(room, self.cfg.max_values_per_accept)
            and size < self.cfg.max_bytes_per_accept
        ):
            value = log[slot][1]
            if (values or inflight) and inflight_bytes + size + len(value) > self.cfg.max_inflight_bytes:
                break  # (one value always goes when nothing is in flight)
            values.append(value)
            size += len(value)
            slot += 1
        if values or heartbeat:
            self._send_accept(peer, nxt, values)
            self.next[peer] = nxt + len(values)

    def _send_accept(self, peer: int, first_slot: int, values: list[bytes]) -> None:
        self.seq += 1
        self.seq_sent_ms[self.seq] = self.now
        if len(self.seq_sent_ms) > 4096:
            # Forget the oldest send times; an ack for them only dates the lease less well.
            for old in list(self.seq_sent_ms)[:2048]:
                del self.seq_sent_ms[old]
        self._send(peer, Accept(self.shard, self.id, self.promised, first_slot, values, self.commit, self.seq))

    def _on_accepted(self, msg: Accepted) -> None:
        if not msg.ok:
            if msg.promised > self.promised and self.role in (LEADER, CANDIDATE):
                self.role_reason = f"replica {msg.src} has promised a newer ballot"
                self._step_down(leader=None)
            return
        if self.role != LEADER or msg.ballot != self.promised or msg.src not in self.match:
            return
        peer = msg.src
        sent = self.seq_sent_ms.get(msg.seq)
        if sent is not None and sent >= self.ack_sent_ms.get(peer, -INF_MS):
            self.ack_sent_ms[peer] = sent
            self._update_lease()
        if msg.match > self.match[peer]:
            self.match[peer] = msg.match
        if msg.first_slot > msg.match + 1 or self.next[peer] <= msg.match:
            # The follower has a gap (a lost message) or is ahead of our guess.
            self.next[peer] = msg.match + 1
        if msg.match >= self.first_slot - 1:
            self.snapshot_sent_ms.pop(peer, None)
        self._advance_commit()
        if peer in self.next:  # (a change just chosen may have removed it)
            self._send_entries(peer)
        self._maybe_finish_transfer()

    def _advance_commit(self) -> None:
        while self.role == LEADER:
            # The membership in force governs the slots up to the first
            # pending change, that change included (membership.py).
            members = self.base
            limit = min(self.configs) if self.configs else self.last_slot
            matches = sorted(
                (self.self_match if peer == self.id else self.match.get(peer, 0)) for peer in members.voters
            )
            candidate = min(matches[len(matches) - members.quorum], limit)
            if candidate <= self.commit:
                return
            assert candidate <= self.last_slot
            self.commit = candidate
            self._fold_chosen()

    def _quorum_alive(self) -> bool:
        """Has a quorum acknowledged us recently? (check-quorum)

        Stepping down is for liveness only (the lease, not this, keeps reads
        linearizable), so it waits two election timeouts: a leader whose own
        event loop stalled must not depose itself before it has even read the
        acknowledgements waiting in its sockets.
        """
        if self._alone():
            return True
        return self.now - self._quorum_time() < 2 * self.cfg.election_timeout_ms

    def _update_lease(self) -> None:
        if self._alone():
            self.lease_until = INF_MS
            return
        base = self._quorum_time()
        self.lease_until = max(self.lease_until, base + self.cfg.election_timeout_ms * self.cfg.lease_fraction)

    def _return_to_preferred(self) -> None:
        """Hand leadership back to the preferred replica once it has caught up.

        Only after leading for a while (no ping-pong right after an election)
        and only to a replica that acknowledges everything we have.
        """
        target = self.preferred
        if (
            target is None
            or target == self.id
            or self.transfer_target is not None
            or self.now - self.leader_since_ms < 2 * self.cfg.election_timeout_ms
            or self.match.get(target, 0) < self.last_slot
            or self.now - self.ack_sent_ms.get(target, -INF_MS) > self.cfg.heartbeat_ms * 3
        ):
            return
        self.transfer_leadership(target, "it is the preferred leader and has caught up")

    def _maybe_finish_transfer(self) -> None:
        target = self.transfer_target
        if target is None or self.role != LEADER:
            return
        if self.match.get(target, 0) >= self.last_slot and self.transfer_gate():
            self._send(target, TimeoutNow(self.shard, self.id, self.promised))
            self.role_reason = f"handed leadership to replica {target}: {self.transfer_why}"
            self._step_down(leader=None)
            # Do not refuse the successor's prepare as "leader alive".
            self.last_heard_leader = -INF_MS

    # -- replication: follower -------------------------------------------------------------------
    def _on_accept(self, msg: Accept) -> None:
        if msg.ballot < self.promised:
            self._send(
                msg.src,
                Accepted(self.shard, self.id, msg.ballot, False, self.accepted_upto, self.promised, msg.seq, msg.first_slot),
            )
            return
        if msg.ballot > self.promised:
            self.promised = msg.ballot
            self._ready.promised = msg.ballot
            self.accepted_upto = self.commit
        if self.role in (LEADER, CANDIDATE):
            self.role_reason = f"replica {msg.src} leads with a newer ballot"
            self._step_down(leader=msg.src)
        self.leader = msg.src
        self.last_heard_leader = self.now
        self._reset_election_timer()

        first = msg.first_slot
        ballot = msg.ballot
        log = self.log
        # Far-ahead slots are never stored: a later leader would have to fill
        # every slot up to them. (Ignoring an accept is always safe; a replica
        # that far behind catches up by snapshot.)
        horizon = self.commit + MAX_SLOTS_AHEAD
        members_changed = False
        configs = self.configs
        for i, value in enumerate(msg.values):
            slot = first + i
            if slot <= self.commit:
                continue
            if slot > horizon:
                break
            current = log.get(slot)
            if current is not None and current[0] == ballot:
                continue  # a retransmission
            log[slot] = (ballot, value)
            self._ready.entries.append((slot, ballot, value))
            if value[:1] == CONFIG_TAG or (configs and slot in configs):
                members_changed |= self._note_value(slot, value)
            if slot > self.last_slot:
                self.last_slot = slot
        if members_changed:
            self._members_changed()
        if msg.values and first <= self.accepted_upto + 1:
            self.accepted_upto = max(self.accepted_upto, first + len(msg.values) - 1)
        while True:
            nxt = log.get(self.accepted_upto + 1)
            if nxt is None or nxt[0] != ballot:
                break
            self.accepted_upto += 1
        new_commit = min(msg.commit, self.accepted_upto)
        if new_commit > self.commit:
            self.commit = new_commit
            self._fold_chosen()
        self._send(
            msg.src,
            Accepted(self.shard, self.id, ballot, True, self.accepted_upto, self.promised, msg.seq, first),
        )

    # -- plumbing --------------------------------------------------------------------------------------
    def _send(self, peer: int, msg: Message) -> None:
        self._ready.messages.append((peer, msg))
