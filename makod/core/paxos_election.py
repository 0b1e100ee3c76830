"""Multi-Paxos leader election (a mixin of Paxos): the randomized election
timer, campaigns (and leadership transfer), votes and their fences, becoming
leader and stepping down. The rules are paxos.py's docstring."""

from __future__ import annotations


from makod.core.membership import CONFIG_TAG, decode_config
from makod.core.messages import (
    Prepare,
    Promise,
    ballot_round,
    make_ballot,
)

FOLLOWER = "follower"
CANDIDATE = "candidate"
LEADER = "leader"
LEARNER = "learner"

NOOP = b""  # the value a new leader proposes to fill a gap

INF_MS = float("inf")


class Election:
    # -- election ------------------------------------------------------------------------------
    def _reset_election_timer(self) -> None:
        timeout = self.cfg.election_timeout_ms
        low, high = self.election_window()
        self.election_deadline = self.now + timeout * (low + (high - low) * self.rng.random())

    def election_window(self) -> tuple[float, float]:
        """When a follower campaigns, in election timeouts after it last heard a leader.

        Never before 1: the lease of the leader it last acknowledged may run
        until then. The preferred replica draws from the front of the window,
        so it usually times out first and usually leads.
        """
        if self.preferred == self.id:
            return 1.0, 1.2
        return 1.0, 2.0

    def _may_campaign(self) -> bool:
        """Our own campaign is a vote for ourselves: the same rule as any vote."""
        return self._may_vote_for_another()

    def _may_vote_for_another(self) -> bool:
        """May this replica vote for a new leader (itself included) without a handover?

        Not while it hears a live leader, and not in the first election timeout
        after it started: either way a leader's lease may still rest on it.
        """
        if self._alone():
            return True
        return not self._leader_alive() and self.now >= self.vote_fence_until

    def _campaign(self, transfer: bool) -> None:
        assert self.is_voter
        round_ = max(ballot_round(self.promised), self.max_round_seen) + 1
        ballot = make_ballot(round_, self.id)
        self.max_round_seen = round_
        self.promised = ballot
        self._ready.promised = ballot
        self.role = CANDIDATE
        self.leader = None
        self.lease_until = -INF_MS
        self.accepted_upto = self.commit
        self._reset_election_timer()
        own_entries = [(s, b, v) for s, (b, v) in self.log.items() if s > self.commit]
        self.promises = {
            self.id: Promise(self.shard, self.id, ballot, True, ballot, self.commit, self.first_slot, own_entries, "")
        }
        self.asked = {self.id}
        self.transfer_campaign = transfer
        if self._election_won():
            self._become_leader()

    def _election_won(self) -> bool:
        """Do the promises cover a majority of every membership that governs a
        slot above our chosen prefix? Asks the voters of each one it learns of.

        The chain starts at the membership in force after our prefix; each
        CONFIG entry among the values we would re-propose (the highest-ballot
        value of each slot) governs the slots after it, and its voters may
        have accepted those (docs/MEMBERSHIP.md, "Elections").
        """
        chain = [self.base]
        if any(value[:1] == CONFIG_TAG for p in self.promises.values() for _s, _b, value in p.entries):
            best: dict[int, tuple[int, bytes]] = {}
            start = self.commit + 1
            for promise in self.promises.values():
                for slot, entry_ballot, value in promise.entries:
                    if slot >= start and (slot not in best or entry_ballot > best[slot][0]):
                        best[slot] = (entry_ballot, value)
            for slot in sorted(best):
                change = decode_config(best[slot][1])
                if change is not None:
                    chain.append(change.applied_to(chain[-1]))
        won = True
        for members in chain:
            for peer in members.voters:
                if peer not in self.asked:
                    self.asked.add(peer)
                    self._send(peer, Prepare(self.shard, self.id, self.promised, self.commit + 1,
                                             self.transfer_campaign))
            if sum(1 for v in members.voters if v in self.promises) < members.quorum:
                won = False
        # A log that removes us is led by one of the voters it keeps.
        return won and self.id in chain[-1].voters

    def _leader_alive(self) -> bool:
        if self.role == LEADER:
            return self._quorum_alive()
        return self.leader is not None and self.now - self.last_heard_leader < self.cfg.election_timeout_ms

    def _on_prepare(self, msg: Prepare) -> None:
        def refuse(reason: str) -> None:
            self._send(
                msg.src,
                Promise(self.shard, self.id, msg.ballot, False, self.promised, self.commit, self.first_slot, [], reason),
            )

        if msg.ballot < self.promised:
            refuse("stale ballot")
            return
        if msg.ballot > self.promised and not msg.transfer and not self._may_vote_for_another():
            refuse("leader alive" if self._leader_alive() else "just restarted")
            return
        if self.first_slot > msg.from_slot:
            refuse("candidate behind")
            return
        entries = [(s, b, v) for s, (b, v) in self.log.items() if s >= msg.from_slot]
        if len(entries) > self.cfg.max_promise_entries or (
                sum(len(e[2]) for e in entries) > self.cfg.max_promise_bytes):
            refuse("candidate behind")
            return
        if msg.ballot > self.promised:
            self.promised = msg.ballot
            self._ready.promised = msg.ballot
            if self.role in (LEADER, CANDIDATE):
                self.role_reason = f"replica {msg.src} campaigns with a newer ballot"
                self._step_down(leader=None)
            self.leader = None
            self.accepted_upto = self.commit
            # A promise resets the timer: give the candidate time to finish.
            self._reset_election_timer()
        self._send(
            msg.src,
            Promise(self.shard, self.id, msg.ballot, True, self.promised, self.commit, self.first_slot, entries, ""),
        )

    def _on_promise(self, msg: Promise) -> None:
        if self.role != CANDIDATE or msg.ballot != self.promised:
            return
        if not msg.ok:
            if msg.promised > self.promised:
                self.role_reason = f"replica {msg.src} has promised a newer ballot"
                self._step_down(leader=None)
            return
        self.promises[msg.src] = msg
        if self._election_won():
            self._become_leader()

    def _become_leader(self) -> None:
        ballot = self.promised
        start = self.commit + 1
        best: dict[int, tuple[int, bytes]] = {}
        for promise in self.promises.values():
            assert promise.first_slot <= start, "a promiser truncated slots the candidate lacks"
            for slot, entry_ballot, value in promise.entries:
                if slot < start:
                    continue
                if slot not in best or entry_ballot > best[slot][0]:
                    best[slot] = (entry_ballot, value)
        top = max([self.last_slot, *best.keys()])
        self.configs = {}
        for slot in range(start, top + 1):
            value = best[slot][1] if slot in best else NOOP
            self.log[slot] = (ballot, value)
            self._ready.entries.append((slot, ballot, value))
            if value[:1] == CONFIG_TAG:
                self._note_value(slot, value)
        self.last_slot = top
        self._derive()
        self.role = LEADER
        self.role_reason = "won the election: promises from " + ", ".join(f"replica {p}" for p in sorted(self.promises))
        self.leader = self.id
        self.leader_since_slot = top
        self.leader_since_ms = self.now
        self.self_match = self.commit
        self.next = {peer: start for peer in self.peer_ids}
        self.match = {peer: 0 for peer in self.peer_ids}
        for peer, promise in self.promises.items():
            if peer in self.match:
                self.match[peer] = min(promise.chosen_upto, self.commit)
        self.ack_sent_ms = {peer: self.now for peer in self.all_voters}
        self.seq_sent_ms = {}
        self.lease_until = INF_MS if self._alone() else -INF_MS
        self.transfer_target = None
        self.promises = {}
        self._broadcast(heartbeat=True)

    def _step_down(self, leader: int | None) -> None:
        self.role = FOLLOWER if self.is_voter else LEARNER
        self.leader = leader
        self.lease_until = -INF_MS
        self.transfer_target = None
        self.promises = {}
        self.accepted_upto = self.commit
        self._reset_election_timer()
