"""The Multi-Paxos core, one rule per test (as etcd-raft names tests after the paper).

A tiny in-test network delivers messages by hand, so each test states
exactly which messages arrive.
"""

from __future__ import annotations

import random

import pytest

from makod.core.messages import Accept, Accepted, Prepare, Promise, TimeoutNow, make_ballot
from makod.core.paxos import CANDIDATE, FOLLOWER, LEADER, LEARNER, NOOP, Paxos, PaxosConfig

CFG = PaxosConfig(election_timeout_ms=100, heartbeat_ms=20)


def node(i, voters=(0, 1, 2), learners=(), **kw):
    p = Paxos(0, i, list(voters), list(learners), CFG, random.Random(i), **kw)
    p.tick(0)
    # Campaign only when a test says so; a promise or accept resets this
    # timer, so tests tick past it only on purpose (with expire()).
    p.election_deadline = float("inf")
    p._reset_election_timer = lambda: None
    # Replicas that have been up for a while (the restart fence has its own tests).
    p.vote_fence_until = float("-inf")
    return p


class Net:
    """Delivers messages between Paxos objects, persisting and advancing like a driver."""

    def __init__(self, nodes):
        self.nodes = {n.id: n for n in nodes}
        self.applied = {n.id: [] for n in nodes}
        self.down: set[int] = set()
        self.inbox: list = []

    def pump(self, drop=lambda src, dst, msg: False):
        while True:
            moved = False
            for n in self.nodes.values():
                if n.id in self.down or not n.has_ready:
                    continue
                ready = n.ready()
                n.advance(ready)
                self.applied[n.id] += ready.committed
                for dst, msg in ready.messages:
                    if dst not in self.down and not drop(n.id, dst, msg):
                        self.inbox.append((dst, msg))
                moved = True
            while self.inbox:
                dst, msg = self.inbox.pop(0)
                self.nodes[dst].step(msg)
                moved = True
            if not moved:
                return

    def elect(self, i, now=1000):
        n = self.nodes[i]
        n.tick(now)  # past the election timeout
        n._campaign(transfer=False)
        self.pump()
        assert n.role == LEADER


def test_a_single_voter_leads_at_once():
    p = node(0, voters=(0,))
    assert p.role == LEADER
    slot = p.propose(b"x")
    ready = p.ready()
    assert (slot, p.promised, b"x") in ready.entries
    p.advance(ready)
    assert p.ready().committed[-1] == (slot, b"x")


def test_a_promise_is_persisted_before_it_is_sent():
    p = node(1)
    p.tick(500)
    p.step(Prepare(0, 0, make_ballot(1, 0), 1, False))
    ready = p.ready()
    assert ready.promised == make_ballot(1, 0)
    assert any(isinstance(m, Promise) and m.ok for _, m in ready.messages)


def test_an_acceptor_never_accepts_below_its_promise():
    p = node(1)
    p.tick(500)
    p.step(Prepare(0, 2, make_ballot(5, 2), 1, False))
    p.ready()
    p.step(Accept(0, 0, make_ballot(4, 0), 1, [b"old"], 0, 1))
    ready = p.ready()
    assert 1 not in p.log
    (_, reply), = ready.messages
    assert isinstance(reply, Accepted) and not reply.ok and reply.promised == make_ballot(5, 2)


def test_a_promised_ballot_never_decreases():
    p = node(1)
    p.tick(500)
    p.step(Prepare(0, 2, make_ballot(5, 2), 1, False))
    p.step(Prepare(0, 0, make_ballot(3, 0), 1, False))
    assert p.promised == make_ballot(5, 2)
    refusals = [m for _, m in p.ready().messages if isinstance(m, Promise) and not m.ok]
    assert refusals and refusals[0].reason == "stale ballot"


def test_a_new_leader_reproposes_the_highest_ballot_value_and_fills_holes_with_noops():
    a, b, c = node(0), node(1), node(2)
    # The quorum is {a, b} (c is down). a accepted "v1" at slot 1 under
    # ballot 1; b accepted "v2" there under ballot 2, and "w3" at slot 3.
    a.log = {1: (make_ballot(1, 0), b"v1")}
    a.last_slot = 1
    b.log = {1: (make_ballot(2, 1), b"v2"), 3: (make_ballot(2, 1), b"w3")}
    b.last_slot = 3
    net = Net([a, b, c])
    net.down = {2}
    net.elect(0)
    assert a.log[1][1] == b"v2"  # highest ballot wins
    assert a.log[2][1] == NOOP  # the hole
    assert a.log[3][1] == b"w3"
    assert all(entry[0] == a.promised for entry in a.log.values())


def test_a_slot_is_chosen_only_with_a_majority():
    a, b, c = node(0), node(1), node(2)
    net = Net([a, b, c])
    net.elect(0)
    net.down = {1, 2}
    slot = a.propose(b"x")
    net.pump()
    assert a.commit < slot
    net.down = set()
    a.tick(1000 + CFG.heartbeat_ms + 1)  # the next heartbeat resends the entry
    net.pump()
    assert a.commit >= slot
    assert (slot, b"x") in net.applied[0]
    a.tick(1000 + 2 * CFG.heartbeat_ms + 2)  # followers learn the commit index
    net.pump()
    assert (slot, b"x") in net.applied[1] and (slot, b"x") in net.applied[2]


def test_followers_refuse_a_candidate_while_their_leader_is_alive():
    a, b, c = node(0), node(1), node(2)
    net = Net([a, b, c])
    net.elect(0)
    b.step(Prepare(0, 2, make_ballot(9, 2), 1, False))
    replies = [m for _, m in b.ready().messages if isinstance(m, Promise)]
    assert replies and not replies[0].ok and replies[0].reason == "leader alive"
    assert b.promised == a.promised


def test_a_leader_steps_down_on_a_higher_ballot():
    a, b, c = node(0), node(1), node(2)
    net = Net([a, b, c])
    net.elect(0)
    a.step(Accepted(0, 1, a.promised, False, 0, make_ballot(50, 1), 0, 1))
    assert a.role == FOLLOWER


def test_a_leader_without_a_quorum_steps_down_and_loses_its_lease():
    a, b, c = node(0), node(1), node(2)
    net = Net([a, b, c])
    net.elect(0, now=1000)
    a.tick(1010)
    net.pump()
    assert a.lease_valid()
    net.down = {1, 2}
    a.tick(1010 + CFG.election_timeout_ms + 1)
    assert not a.lease_valid()  # the lease ends first: no stale reads meanwhile
    a.tick(1010 + 2 * CFG.election_timeout_ms + 1)
    assert a.role == FOLLOWER


def test_learners_replicate_but_never_vote_or_lead():
    a, b, c, l = node(0, learners=(3,)), node(1, learners=(3,)), node(2, learners=(3,)), node(3, learners=(3,))
    assert l.role == LEARNER
    l.tick(10_000)
    assert l.role == LEARNER  # never campaigns
    net = Net([a, b, c, l])
    net.elect(0)
    slot = a.propose(b"to-everyone")
    net.pump()
    a.tick(1000 + CFG.heartbeat_ms + 1)  # the heartbeat carries the new commit index
    net.pump()
    assert (slot, b"to-everyone") in net.applied[3]
    assert not any(isinstance(m, Prepare) for _, m in a.ready().messages)


def test_leadership_transfer_hands_over_to_an_up_to_date_replica():
    a, b, c = node(0), node(1), node(2)
    net = Net([a, b, c])
    net.elect(0)
    a.propose(b"x")
    net.pump()
    assert a.transfer_leadership(2)
    assert a.propose(b"blocked") is None or a.role != LEADER
    net.pump()
    assert c.role == LEADER and a.role == FOLLOWER


def test_a_lost_message_is_resent_on_the_next_heartbeat():
    a, b, c = node(0), node(1), node(2)
    net = Net([a, b, c])
    net.elect(0)
    slot = a.propose(b"x")
    net.pump(drop=lambda src, dst, msg: isinstance(msg, Accept) and dst == 1 and msg.values)
    assert b.log.get(slot) is None
    a.tick(1000 + CFG.heartbeat_ms + 1)
    net.pump()
    a.tick(1000 + 2 * CFG.heartbeat_ms + 2)
    net.pump()
    assert b.log[slot][1] == b"x"


def test_an_acceptor_far_behind_is_told_it_cannot_lead():
    a = node(0)
    a.first_slot = 100
    a.commit = a.handed = a.accepted_upto = 99
    a.last_slot = 99
    a.tick(500)
    a.step(Prepare(0, 1, make_ballot(3, 1), 5, False))
    (_, reply), = a.ready().messages
    assert not reply.ok and reply.reason == "candidate behind"


def test_timeout_now_makes_a_follower_campaign_even_if_the_leader_was_alive():
    a, b, c = node(0), node(1), node(2)
    net = Net([a, b, c])
    net.elect(0)
    b.step(TimeoutNow(0, 0, a.promised))
    assert b.role in (CANDIDATE, LEADER)
    assert any(isinstance(m, Prepare) and m.transfer for _, m in b.ready().messages)


@pytest.mark.parametrize("bad_time", [-1.0])
def test_time_never_goes_backwards(bad_time):
    p = node(0)
    p.tick(10)
    with pytest.raises(AssertionError):
        p.tick(bad_time)


def test_a_restart_with_a_hole_below_the_chosen_prefix_keeps_only_the_run_above_it():
    # The log on disk lacks slot 2 (its write was lost in a crash after the
    # state machine had applied it from memory); the checkpoint says 4.
    import random as _random

    from makod.core.paxos import Paxos, PaxosConfig

    log = {1: (5, b"a"), 3: (5, b"c"), 4: (5, b"d"), 5: (5, b"e")}
    p = Paxos(0, 0, [0, 1, 2], [], PaxosConfig(), _random.Random(1), promised=5, log=log, chosen_upto=4)
    assert p.first_slot == 3 and sorted(p.log) == [3, 4, 5]
    p = Paxos(0, 0, [0, 1, 2], [], PaxosConfig(), _random.Random(1), promised=5, log={1: (5, b"a")}, chosen_upto=4)
    assert p.first_slot == 5 and not p.log


def test_an_acceptor_whose_tail_would_not_fit_a_frame_tells_the_candidate_it_cannot_lead():
    # A few big accepted slots above the candidate's prefix: the Promise would
    # carry them all in one message, past what a peer frame may hold.
    a = node(0)
    a.cfg = PaxosConfig(election_timeout_ms=100, heartbeat_ms=20, max_promise_bytes=1000)
    for slot in (1, 2, 3):
        a.log[slot] = (make_ballot(1, 0), b"v" * 400)
    a.last_slot = a.accepted_upto = 3
    a.tick(500)
    a.step(Prepare(0, 1, make_ballot(3, 1), 1, False))
    (_, reply), = a.ready().messages
    assert not reply.ok and reply.reason == "candidate behind"
    a.step(Prepare(0, 1, make_ballot(4, 1), 2, False))  # only slots 2-3: 800 bytes
    (_, reply), = a.ready().messages
    assert reply.ok and [e[0] for e in reply.entries] == [2, 3]
