"""Membership changes in the Paxos core, one rule per test (makod/core/membership.py,
docs/MEMBERSHIP.md): CONFIG entries, one change at a time, alpha = 1, the
election over every membership a candidate learns of, and a restart that
reads its membership back from its own log."""

from __future__ import annotations

import msgpack
from hypothesis import given, strategies as st

from makod.core.membership import (
    CONFIG_TAG, Change, Membership, change_error, decode_config, encode_config,
)
from makod.core.messages import Accept
from makod.core.paxos import CANDIDATE, FOLLOWER, LEADER, LEARNER
from makod.sim.planted import planted

from tests.unit.test_paxos_rules import Net, node


def chosen_values(net, i):
    return [v for _s, v in net.applied[i]]


def heartbeat(net, lead):
    """One heartbeat round: followers learn the leader's commit from it."""
    lead.tick(lead.now + 30)
    net.pump()


def leader_serving(net, i):
    """Elect ``i`` and get one entry of its own chosen (what a change needs)."""
    net.elect(i)
    net.nodes[i].propose(b"first")
    net.pump()
    return net.nodes[i]


def test_a_config_entry_is_told_apart_by_its_first_byte():
    members = Membership.of([2, 0, 1], [5])
    value = encode_config(members, Membership.of([0, 1, 2]))
    assert value[:1] == CONFIG_TAG
    assert decode_config(value) == Change(Membership((0, 1, 2)), Membership((0, 1, 2), (5,)))
    # No batch, epoch entry or no-op starts with 0xc1 (msgpack never writes it).
    assert decode_config(b"") is None
    assert decode_config(msgpack.packb([1, 2, 3])) is None


@given(st.binary(max_size=64))
def test_malformed_config_bytes_read_as_no_config(data):
    result = decode_config(CONFIG_TAG + data)
    assert result is None or isinstance(result, Change)


def test_a_change_moves_at_most_one_voter():
    old = Membership.of([0, 1, 2])
    assert change_error(old, Membership.of([0, 1, 2], [3])) is None  # a learner: no voter moves
    assert change_error(old, Membership.of([0, 1, 2, 3])) is None
    assert change_error(old, Membership.of([0, 1])) is None
    assert "at most one voter" in change_error(old, Membership.of([0, 1, 2, 3, 4]))
    assert "at most one voter" in change_error(old, Membership.of([0, 1, 3]))  # a swap is two
    assert "would not change" in change_error(old, old)


def test_a_learner_is_added_then_promoted_and_then_counts():
    nodes = [node(i) for i in range(3)] + [node(3, learners=(3,))]
    net = Net(nodes)
    lead = leader_serving(net, 0)
    assert lead.propose_membership(Membership.of([0, 1, 2], [3])) is None
    net.pump()
    assert lead.base == Membership.of([0, 1, 2], [3])
    assert nodes[3].role == LEARNER
    assert lead.propose_membership(Membership.of([0, 1, 2, 3])) is None
    net.pump()
    assert lead.base == Membership.of([0, 1, 2, 3]) and lead.quorum == 3
    assert nodes[3].role == FOLLOWER and nodes[3].is_voter
    # Four voters: the leader and one follower no longer make a majority.
    net.down = {2, 3}
    slot = lead.propose(b"needs three")
    net.pump()
    assert lead.commit < slot
    net.down = {2}
    lead.tick(lead.now + 30)  # a heartbeat resends to 3
    net.pump()
    assert lead.commit >= slot
    heartbeat(net, lead)
    assert b"needs three" in chosen_values(net, 3)


def test_alpha_is_one_nothing_above_a_pending_change_is_sent():
    nodes = [node(i) for i in range(3)] + [node(3, learners=(3,))]
    net = Net(nodes)
    lead = leader_serving(net, 0)
    assert lead.propose_membership(Membership.of([0, 1, 2], [3])) is None
    change_slot = lead.last_slot
    after = lead.propose(b"after the change")
    sent = [msg for _dst, msg in lead.ready().messages if type(msg) is Accept]
    assert sent and all(msg.first_slot + len(msg.values) - 1 <= change_slot for msg in sent)
    assert after == change_slot + 1
    assert lead.propose_membership(Membership.of([0, 1, 2, 3])) == "the previous membership change is not chosen yet"
    net.pump()  # (the ready above was taken by hand: heartbeats resend)
    lead.tick(lead.now + 30)
    net.pump()
    assert lead.commit >= after
    heartbeat(net, lead)
    assert b"after the change" in chosen_values(net, 3)


def test_changes_are_refused_when_they_are_unsafe():
    nodes = [node(i) for i in range(3)]
    net = Net(nodes)
    net.elect(0)
    lead = nodes[0]
    # Right after an election, before any entry of its own is chosen (Raft's rule).
    lead.propose(b"unchosen")
    assert lead.propose_membership(Membership.of([0, 1])) == "this leader has no entry of its own chosen yet"
    net.pump()
    assert nodes[1].propose_membership(Membership.of([0, 1])) == "not the leader"
    assert "at most one voter" in lead.propose_membership(Membership.of([0, 1, 2, 3, 4]))
    assert "cannot remove itself" in lead.propose_membership(Membership.of([1, 2]))
    assert lead.propose_membership(Membership.of([0, 1])) is None


def test_a_removed_voter_becomes_a_learner_and_stops_counting():
    nodes = [node(i) for i in range(3)]
    net = Net(nodes)
    lead = leader_serving(net, 0)
    assert lead.propose_membership(Membership.of([0, 1])) is None
    net.pump()
    assert nodes[2].role == LEARNER and not nodes[2].is_voter
    assert 2 not in lead.match  # no longer sent to, its acknowledgements ignored
    net.down = {1}
    slot = lead.propose(b"x")
    net.pump()
    assert lead.commit < slot  # two voters: both needed, replica 2 no help


def test_a_replica_whose_log_removes_it_never_leads():
    # Replica 0 led, proposed removing 2 and went down; only 1 holds the
    # change. 2, which never saw it, campaigns: 1's promise shows it a log
    # that removes it, so it does not lead. 1 then may.
    nodes = [node(i) for i in range(3)]
    net = Net(nodes)
    lead = leader_serving(net, 0)
    assert lead.propose_membership(Membership.of([0, 1])) is None
    net.pump(drop=lambda src, dst, msg: type(msg).__name__ == "Accepted" or (src == 0 and dst == 2))
    net.down = {0}
    for n in nodes[1:]:
        n.tick(lead.now + 1000)
    assert nodes[1].configs and not nodes[2].configs and nodes[2].is_voter
    nodes[2]._campaign(transfer=False)
    net.pump()
    assert nodes[2].role == CANDIDATE and len(nodes[2].promises) == 2  # a majority of {0,1,2}, yet
    nodes[1]._campaign(transfer=False)
    net.pump()
    assert nodes[1].role == CANDIDATE  # {0,1} must both promise: 0 is down
    net.down = set()
    nodes[0].tick(lead.now + 1000)  # it lost its quorum long ago
    nodes[1]._campaign(transfer=False)
    net.pump()
    assert nodes[1].role == LEADER
    assert nodes[1].base == Membership.of([0, 1])  # re-proposed and chosen by 1 and 2
    assert 2 not in nodes[1].match


def _candidate_that_learns_of_a_change():
    """Replica 1 accepted a CONFIG adding voter 3 at slot 1; candidate 2 has
    nothing. Promises from 2 and 1 are a majority of {0,1,2} but not of
    {0,1,2,3}: 2 must also hear from 3 (or 0), whom it now asks."""
    nodes = [node(0), node(1), node(2), node(3, learners=(3,))]
    config = encode_config(Membership.of([0, 1, 2, 3]), Membership.of([0, 1, 2]))
    nodes[1].step(Accept(0, 0, nodes[1].promised + 256, 1, [config], 0, 1))
    assert nodes[1].is_voter and nodes[1].configs
    nodes[1].ready()
    net = Net(nodes)
    net.down = {0, 3}
    nodes[1].tick(1000)  # it heard replica 0 long ago: it may vote
    cand = nodes[2]
    cand.tick(1000)
    cand._campaign(transfer=False)
    net.pump()
    return net, nodes, cand, config


def test_a_candidate_needs_a_majority_of_every_membership_it_learns_of():
    net, nodes, cand, config = _candidate_that_learns_of_a_change()
    assert cand.role == CANDIDATE, "won on the old membership alone"
    assert 3 in cand.asked
    net.down = {0}
    nodes[3].tick(1000)
    # Ask again (the first Prepare to 3 was lost while it was down).
    cand.asked.discard(3)
    cand._election_won()
    net.pump()
    assert cand.role == LEADER
    assert cand.voters == [0, 1, 2, 3]
    assert cand.log[1][1] == config


def test_the_planted_election_bug_wins_on_the_old_membership():
    with planted("members-base-election"):
        _net, _nodes, cand, _config = _candidate_that_learns_of_a_change()
        assert cand.role == LEADER


def test_a_restart_reads_pending_changes_from_its_own_log():
    config = encode_config(Membership.of([0, 1, 2, 3]), Membership.of([0, 1, 2], [3]))
    p = node(3, learners=(3,), log={1: (257, b"x"), 2: (257, config)}, chosen_upto=1)
    assert p.is_voter and p.role == FOLLOWER
    assert p.base == Membership.of([0, 1, 2], [3]) and list(p.configs) == [2]
    q = node(3, learners=(3,), log={1: (257, config)}, chosen_upto=1)  # chosen: in force via the checkpoint only
    assert not q.configs and q.role == LEARNER


def test_a_snapshot_brings_its_membership():
    p = node(5, voters=(0, 1, 2))
    assert p.role == LEARNER
    p.snapshot_installed(40, Membership.of([0, 1, 2, 5]))
    assert p.is_voter and p.role == FOLLOWER and p.base.voters == (0, 1, 2, 5)


def test_a_change_built_on_an_older_membership_is_a_no_op():
    # Leader 0, cut off, logged "promote 3" (built on {0,1,2}|3) at slot 6;
    # meanwhile "remove 0" ({1,2}|3) was chosen at slot 4. A later leader
    # must re-propose slot 6, but it must not move two voters at once nor
    # bring 0 back: built on a membership no longer in force, it is a no-op.
    base = Membership.of([0, 1, 2], [3])
    removal = encode_config(Membership.of([1, 2], [3]), base)
    stale = encode_config(Membership.of([0, 1, 2, 3]), base)
    p = node(1, voters=(0, 1, 2), learners=(3,), log={4: (257, removal), 6: (257, stale)}, chosen_upto=3)
    assert p.memberships() == [base, Membership.of([1, 2], [3]), Membership.of([1, 2], [3])]
    assert p.voters == [1, 2]
    p.commit = 6
    p._fold_chosen()
    assert p.base == Membership.of([1, 2], [3]) and not p.configs
