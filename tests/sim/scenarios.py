"""Scripted simulator scenarios, one per safety bug of the issue "Safety under
faults": each drives a small cluster into the exact interleaving that once
broke a promise, then checks the promise. Each returns nothing and raises
AssertionError (or the world's SafetyViolation) when the promise is broken.

tests/sim/test_regressions.py runs them as they are (they must pass) and with
the bug's cause put back (makod/sim/planted.py: they must fail), so each is
known to test what it claims to.
"""

from __future__ import annotations

from typing import Any

from makod.core.entries import ENTRY_BATCH, decode_entry
from makod.core.messages import Accept
from makod.core.requests import ForwardReply, ForwardRequest, TxnRequest
from makod.core.slots import key_slot
from makod.core.txn_messages import TxnInstall, TxnPrepare
from makod.sim.checker import replica_states
from makod.sim.faults import Faults
from makod.sim.world import World
from makod.kv.replies import ErrorReply, SimpleString


class Client:
    """Submits requests to simulated nodes and keeps what came back."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.log: list[tuple[float, str, Any]] = []

    def submit(self, node: int, argvs: list[list[bytes]], tag: str, multi: bool = False) -> dict:
        box: dict = {}

        def done(result: Any) -> None:
            if "r" not in box:
                box["r"] = result
                box["t"] = self.world.now
                self.log.append((self.world.now, tag, result))

        self.log.append((self.world.now, tag + " (sent)", None))
        self.world.nodes[node].submit(TxnRequest(argvs, multi=multi), done)
        return box

    def wait(self, box: dict, limit_ms: float = 5000.0) -> Any:
        deadline = self.world.now + limit_ms
        while "r" not in box and self.world.now < deadline:
            self.world.run_until(self.world.now + 1)
        return box.get("r")

    def history(self) -> str:
        return "\n".join(f"  {t:8.1f} {tag}: {r!r}" for t, tag, r in self.log)


def serving_leader(world: World, shard: int) -> int | None:
    for i in world.leaders(shard):
        if world.nodes[i].core.replica.can_serve():
            return i
    return None


def wait_for_leader(world: World, shard: int, limit_ms: float = 5000.0, other_than: int | None = None) -> int:
    deadline = world.now + limit_ms
    while world.now < deadline:
        leader = serving_leader(world, shard)
        if leader is not None and leader != other_than:
            return leader
        world.run_until(world.now + 1)
    raise AssertionError(f"shard {shard} has no serving leader after {limit_ms} ms")


def key_on(shard: int, shards: int, prefix: bytes) -> bytes:
    per = 16384 // shards
    for i in range(10_000):
        key = prefix + b"%d" % i
        slot = key_slot(key)
        if shard * per <= slot < (shard + 1) * per or (shard == shards - 1 and slot >= shard * per):
            return key
    raise AssertionError("no key")


def settle(world: World, ms: float = 4000.0) -> None:
    world.partition = None
    world.blocked = set()
    for i in world.ids:
        world.restart(i)
    world.run_until(world.now + ms)


def assert_converged(world: World, shard: int) -> dict[bytes, tuple]:
    """Every replica of ``shard`` holds the same state; returns it."""
    states = replica_states(world)
    members = [i for i in world.members[shard][0] if i in states]
    first = states[members[0]]
    for i in members[1:]:
        assert states[i] == first, f"shard {shard}: replica n{i} differs from n{members[0]}"
    return first


# -- 2: a deletion carries its dependencies ------------------------------------------------------
def tombstone(variant: str) -> None:
    """A cross-shard MULTI deletes ``a`` and is rolled back because the other
    shard's leader never replicates its part. A blind SET of ``a`` (or a GET of
    it) that ran after the DEL must go down with it: otherwise the rollback
    restores the old value over an acknowledged write (replicas diverge), or a
    read returns the absence a rolled-back delete left."""
    w = World(1, replicas=3, shards=2, faults=Faults())
    c = Client(w)
    w.run_until(3000)
    l0, l1 = wait_for_leader(w, 0), wait_for_leader(w, 1)
    a, b = key_on(0, 2, b"a"), key_on(1, 2, b"b")
    c.wait(c.submit(l0, [[b"SET", a, b"old"]], "SET a old"))
    # Shard 1's leader keeps reaching shard 0 but not its own followers: it
    # installs its part of T and can never replicate it.
    s0, f1 = set(w.members[0][0]), set(w.members[1][0]) - {l1}
    w.partition = [s0 | {l1}, s0 | f1]
    w.run_until(w.now + 20)
    t = c.submit(l0, [[b"DEL", a], [b"SET", b, b"x"]], "T: MULTI DEL a; SET b x", multi=True)
    w.run_until(w.now + 30)
    if variant == "blind-set":
        s = c.submit(l0, [[b"SET", a, b"new"]], "S: SET a new")
    else:
        s = c.submit(l0, [[b"GET", a]], "R: GET a")
    w.run_until(w.now + 3000)
    settle(w)
    final_a = assert_converged(w, 0).get(a)
    t_ok, s_result = not isinstance(t.get("r"), ErrorReply) and "r" in t, s.get("r")
    assert not t_ok, "T's shard 1 part was never replicated, yet T was acknowledged\n" + c.history()
    if variant == "blind-set":
        if s_result == b"OK" or getattr(s_result, "text", None) == "OK":
            assert final_a is not None and final_a[1] == b"new", f"SET a new was acknowledged, a is {final_a}\n" + c.history()
    else:
        assert "r" in s, "GET a never answered\n" + c.history()
        assert s_result == b"old" or isinstance(s_result, ErrorReply), (
            f"GET a answered {s_result!r}: the absence left by T, which was rolled back\n" + c.history()
        )


# -- 3 and 4: a lease is not undercut by a restart or a short timer --------------------------------
def lease_after_restart(seed: int = 0) -> None:
    """A follower that acknowledged the leader restarts at once and must not vote
    for a rival while the leader's lease (resting on that acknowledgement) runs:
    else the old leader serves a stale GET after a newer SET was acknowledged."""
    w = World(seed, replicas=3, shards=1, faults=Faults())
    c = Client(w)
    w.run_until(2000)
    leader = wait_for_leader(w, 0)
    f1, f2 = [n for n in w.members[0][0] if n != leader]
    c.wait(c.submit(leader, [[b"SET", b"k", b"old"]], "SET k old"))
    w.partition = [{leader, f1}, {f1, f2}]  # f2 loses the leader; f1 still acknowledges it
    w.run_until(w.now + 700)
    assert w.leaders(0) == [leader]
    start = w.now
    w.partition = [{leader}, {f1, f2}]  # the leader's lease now rests on f1's last acknowledgement
    w.crash(f1)
    w.run_until(w.now + 5)
    w.restart(f1)
    w.run_until(w.now + 1)
    w.nodes[f2].core.paxos.election_deadline = w.now  # f2 campaigns now, asking the restarted f1
    _stale_read_race(w, c, leader, [f1, f2], start + 400)


def lease_preferred_timer(seed: int = 0) -> None:
    """The preferred replica times out first, but never within a lease its own
    acknowledgement supports."""
    w = World(seed, replicas=3, shards=1, faults=Faults(), preferred_leaders=True)
    c = Client(w)
    w.run_until(2000)
    preferred = w.preferred[0]
    assert w.leaders(0) == [preferred]
    c.wait(c.submit(preferred, [[b"SET", b"k", b"old"]], "SET k old"))
    w.crash(preferred)
    while not w.leaders(0):
        w.run_until(w.now + 0.5)
        assert w.now < 6000, "no election"
    leader = w.leaders(0)[0]
    other = [n for n in w.members[0][0] if n not in (leader, preferred)][0]
    # The new leader is cut from the other follower (it promised, never hears an
    # Accept), and the preferred replica comes back on the leader's side.
    w.partition = [{leader, preferred}, {preferred, other}]
    w.restart(preferred)
    # Long enough for the other follower to stop counting on the leader, and for
    # the restarted preferred replica's start-up fence to pass.
    w.run_until(w.now + 450)
    assert w.leaders(0) == [leader]
    start = w.now
    w.partition = [{leader}, {preferred, other}]  # the lease rests on the preferred's last ack
    _stale_read_race(w, c, leader, [preferred, other], start + 400)


def _stale_read_race(w: World, c: Client, old_leader: int, others: list[int], until: float) -> None:
    """Once a new leader on the other side acknowledges SET k new, a GET at the
    old leader must not answer the old value."""
    wrote = None
    while w.now < until:
        w.run_until(w.now + 1)
        if wrote is None:
            for n in others:
                node = w.nodes.get(n)
                if node is not None and node.core.replica.can_serve():
                    wrote = c.submit(n, [[b"SET", b"k", b"new"]], f"SET k new at n{n}")
                    break
        elif "r" in wrote:
            got = c.wait(c.submit(old_leader, [[b"GET", b"k"]], f"GET k at the old leader n{old_leader}"), 50)
            assert got != b"old", "stale read after a newer write was acknowledged\n" + c.history()
            return


# -- 5: cross-shard reads answer for the present ------------------------------------------------------
def txn_read_lease(seed: int = 2) -> None:
    """A shard leader that lost its lease, still thinking it leads, must not
    answer a cross-shard transaction's reads: a newer value was acknowledged by
    its successor meanwhile."""
    w = World(seed, replicas=3, shards=2, faults=Faults())
    c = Client(w)
    w.run_until(3000)
    l0, l1 = wait_for_leader(w, 0), wait_for_leader(w, 1)
    x, y = key_on(0, 2, b"x"), key_on(1, 2, b"y")
    c.wait(c.submit(l0, [[b"SET", x, b"old"]], "SET x old"))
    # Shard 0's leader keeps talking to shard 1 only; once its followers may
    # vote (an election timeout later), one of them campaigns at once.
    w.partition = [set(w.members[1][0]) | {l0}, set(w.members[0][0]) - {l0}]
    w.run_until(w.now + w.paxos_config.election_timeout_ms + 15)
    w.nodes[min(set(w.members[0][0]) - {l0})].core.paxos.election_deadline = w.now
    new = wait_for_leader(w, 0, other_than=l0)
    assert c.wait(c.submit(new, [[b"SET", x, b"new"]], "SET x new at the new leader")) is not None
    got = c.wait(c.submit(l1, [[b"GET", x], [b"GET", y]], "MULTI GET x GET y at shard 1", multi=True), 3000)
    if isinstance(got, list):
        assert got[0] != b"old", "a cross-shard read answered a value overwritten before it began\n" + c.history()


# -- 1: an epoch's watermark never covers a batch that was lost --------------------------------------
def epoch_gap(seed: int = 1) -> None:
    """Shard 0's leader proposes the slot holding its part of a cross-shard
    transaction T; no follower gets that slot, one gets the next, and the
    leader dies before it can send the first again. The next leader fills the
    lost slot with a no-op: T's part is gone, so T must be rolled back on
    every shard, never acknowledged, never half applied."""
    w = World(seed, replicas=3, shards=2, faults=Faults())
    c = Client(w)
    w.run_until(2000)
    l0, l1 = wait_for_leader(w, 0), wait_for_leader(w, 1)
    a, b, x = key_on(0, 2, b"a"), key_on(1, 2, b"b"), key_on(0, 2, b"x")
    trap: dict[str, Any] = {"slot": None, "crashed": False}
    send = w.send

    def lossy_send(src: int, dst: int, msg: Any) -> None:
        if src == l0 and type(msg) is Accept and not trap["crashed"]:
            first, last = msg.first_slot, msg.first_slot + len(msg.values) - 1
            if trap["slot"] is None:
                for i, value in enumerate(msg.values):
                    entry = decode_entry(value)
                    if entry and entry[0] == ENTRY_BATCH and any(
                        len(op) > 1 and op[1] == a for txn in entry[3] for op in txn[2]
                    ):
                        trap["slot"] = first + i
            slot = trap["slot"]
            if slot is not None:
                if first <= slot <= last:
                    return  # the slot with T's part never reaches a follower
                if first > slot and msg.values:
                    send(src, dst, msg)  # a later one does, and the leader dies before resending
                    trap["crashed"] = True
                    w.at(0.01, lambda: w.crash(l0))
                    return
        send(src, dst, msg)

    w.send = lossy_send
    t = c.submit(l1, [[b"SET", a, b"T"], [b"SET", b, b"T"]], "T: MULTI SET a T; SET b T (at shard 1)", multi=True)
    for i in range(60):  # a stream of writes on shard 0, so that slots follow T's
        if trap["crashed"]:
            break
        c.submit(l0, [[b"SET", x, b"%d" % i]], f"SET x {i}")
        w.run_until(w.now + 2)
    assert trap["crashed"], "the scenario did not line up (T's slot was never proposed)\n" + c.history()
    w.run_until(w.now + 3000)
    w.send = send
    settle(w)
    c.wait(t, 3000)
    s0, s1 = assert_converged(w, 0), assert_converged(w, 1)
    has_a = s0.get(a) is not None
    has_b = s1.get(b) is not None
    assert has_a == has_b, f"T is half applied: a {'present' if has_a else 'missing'}, b {'present' if has_b else 'missing'}\n" + c.history()
    if isinstance(t.get("r"), list):
        assert has_a and has_b, "T was acknowledged but its writes are gone\n" + c.history()


# -- 6: a snapshot carries the epochs' verdicts -----------------------------------------------------------
def snapshot_verdicts(seed: int = 3) -> None:
    """A follower away during an epoch change catches up by snapshot, crashes
    before its next checkpoint, restarts from its disk and is elected: it must
    close the epoch the snapshot ended in, with the verdict the log gave, not
    an older one it remembered."""
    w = World(seed, replicas=3, shards=1, faults=Faults(), log_retain_slots=2, checkpoint_every_ms=100)
    c = Client(w)
    w.run_until(2000)
    first = wait_for_leader(w, 0)
    away, other = [n for n in w.members[0][0] if n != first]
    for i in range(5):
        c.wait(c.submit(first, [[b"SET", b"k%d" % i, b"1"]], f"SET k{i} 1"))
    w.blocked |= {(away, n) for n in w.ids} | {(n, away) for n in w.ids}  # `away` hears nothing
    assert w.nodes[first].core.paxos.transfer_leadership(other)  # a new epoch while it is away
    w.nodes[first].pump()
    second = wait_for_leader(w, 0, other_than=first)
    for i in range(20):
        c.wait(c.submit(second, [[b"SET", b"k%d" % i, b"2"]], f"SET k{i} 2"))
    w.run_until(w.now + 500)  # checkpoints; the log is compacted past where `away` stopped
    before = w.nodes[away].core.applied_slot
    w.blocked = set()
    while w.nodes[away].core.applied_slot == before:  # until the snapshot is installed
        w.run_until(w.now + 0.1)
        assert w.now < 10_000, "no snapshot came"
    w.crash(away)  # before its next checkpoint
    w.run_until(w.now + 5)
    w.restart(away)
    w.run_until(w.now + w.paxos_config.election_timeout_ms + 20)  # past its start-up fence
    w.crash(second)
    w.nodes[first].core.paxos.election_deadline = float("inf")
    w.nodes[away].core.paxos.election_deadline = w.now
    assert wait_for_leader(w, 0, other_than=second) == away
    c.wait(c.submit(away, [[b"SET", b"k0", b"3"]], "SET k0 3 at the new leader"))
    settle(w)
    assert_converged(w, 0)


# -- 7: coordinator records outlive the log -----------------------------------------------------------------
def coordinator_records(seed: int = 5) -> None:
    """Shard 0 coordinates T across shards; shard 1 never gets its Install and,
    cut off, cannot ask. Shard 0 changes epoch; a follower checkpoints, then
    restarts where it hears shard 1 but not its own shard, so it cannot replay
    its log. When shard 1 asks it what became of T, it must still know that T
    committed (or say nothing), never answer "abort"."""
    w = World(seed, replicas=3, shards=2, faults=Faults(), checkpoint_every_ms=100)
    c = Client(w)
    w.run_until(2000)
    l0 = wait_for_leader(w, 0)
    wait_for_leader(w, 1)
    a, b = key_on(0, 2, b"a"), key_on(1, 2, b"b")
    send = w.send
    w.send = lambda src, dst, msg: None if type(msg) is TxnInstall else send(src, dst, msg)
    c.submit(l0, [[b"SET", a, b"T"], [b"SET", b, b"T"]], "T: MULTI SET a T; SET b T (at shard 0)", multi=True)
    w.run_until(w.now + 100)
    w.send = send
    shard0, shard1 = set(w.members[0][0]), set(w.members[1][0])
    w.partition = [shard0, shard1]  # shard 1 cannot ask
    w.crash(l0)  # shard 0 changes epoch
    w.run_until(w.now + 1500)
    asked = min(shard0 - {l0})
    w.run_until(w.now + 300)  # `asked` has read the new epoch's entry and checkpointed
    w.crash(asked)
    w.run_until(w.now + 5)
    w.partition = [shard0 - {asked}, shard1 | {asked}]  # it hears shard 1 only
    w.restart(asked)
    w.run_until(w.now + 2500)  # shard 1's leader asks; only `asked` can answer
    w.restart(l0)
    settle(w)
    s0, s1 = assert_converged(w, 0), assert_converged(w, 1)
    has_a = s0.get(a) is not None
    has_b = s1.get(b) is not None
    assert has_a == has_b, f"T is half applied: a {'present' if has_a else 'missing'}, b {'present' if has_b else 'missing'}\n" + c.history()


# -- 9: a late duplicate prepare is not installed again --------------------------------------------------

def stale_prepare(protocol: str = "mako", seed: int = 5) -> None:
    """Shard 0 coordinates T: MULTI SET a T; SET b T. A copy of T's prepare to
    shard 1 is held back. T commits; then SET b 2 is acknowledged. Shard 1
    restarts whole (forgetting the outcomes it knew), and the held copy arrives:
    shard 1 locks anew and asks shard 0 what became of T, which answers
    "commit" with T's ops. Installing them again would put b back to T."""
    w = World(seed, replicas=3, shards=2, faults=Faults(), protocol=protocol)
    c = Client(w)
    w.run_until(2000)
    l0 = wait_for_leader(w, 0)
    wait_for_leader(w, 1)
    a, b = key_on(0, 2, b"a"), key_on(1, 2, b"b")
    copies: list = []
    send = w.send

    def keep_copy(src: int, dst: int, msg: Any) -> None:
        if type(msg) is TxnPrepare and msg.shard == 1:
            copies.append(msg)
        send(src, dst, msg)

    w.send = keep_copy
    got = c.wait(c.submit(l0, [[b"SET", a, b"T"], [b"SET", b, b"T"]], "T: MULTI SET a T; SET b T", multi=True))
    w.send = send
    assert got == [SimpleString("OK"), SimpleString("OK")] and copies, f"T did not commit: {got!r}\n" + c.history()
    l1 = wait_for_leader(w, 1)
    assert c.wait(c.submit(l1, [[b"SET", b, b"2"]], "SET b 2")) == SimpleString("OK"), c.history()
    for node in w.members[1][0]:
        w.crash(node)
    w.run_until(w.now + 10)
    for node in w.members[1][0]:
        w.restart(node)
    l1 = wait_for_leader(w, 1)
    w.run_until(w.now + 200)
    w.nodes[l1].receive(copies[0])  # the late copy
    w.run_until(w.now + 3 * w.replica_config.orphan_query_ms + 500)  # it asks shard 0, and hears back
    got = c.wait(c.submit(l1, [[b"GET", b]], "GET b"))
    assert got == b"2", f"T was installed again: b is {got!r}\n" + c.history()
    settle(w)
    assert assert_converged(w, 1).get(b) is not None


# -- 8: a forwarded request runs once, and a bounced one is not lost --------------------------------------------
def forward_late_duplicate(seed: int = 3) -> None:
    """A follower forwards APPEND k m to the leader, which runs it. A copy of that
    message arrives much later, after the leader restarted and leads again: it
    must not run twice."""
    w = World(seed, replicas=3, shards=1, faults=Faults())
    c = Client(w)
    w.run_until(2000)
    leader = wait_for_leader(w, 0)
    follower = min(n for n in w.members[0][0] if n != leader)
    copies: list = []
    send = w.send

    def keep_copy(src: int, dst: int, msg: Any) -> None:
        if type(msg) is ForwardRequest and dst == leader:
            copies.append(msg)
        send(src, dst, msg)

    w.send = keep_copy
    assert c.wait(c.submit(follower, [[b"APPEND", b"k", b"m,"]], "APPEND k m, via a follower")) == 2
    w.send = send
    assert copies, "the follower did not forward"
    w.crash(leader)
    w.run_until(w.now + 10)
    w.restart(leader)
    other = wait_for_leader(w, 0, other_than=leader)
    w.run_until(w.now + w.paxos_config.election_timeout_ms + 20)  # past the restart's fence
    assert w.nodes[other].core.paxos.transfer_leadership(leader)
    w.nodes[other].pump()
    assert wait_for_leader(w, 0, other_than=other) == leader
    w.nodes[leader].receive(copies[0])  # the late copy
    w.run_until(w.now + 500)
    got = c.wait(c.submit(leader, [[b"GET", b"k"]], "GET k"))
    assert got == b"m,", f"APPEND ran {got.count(b'm,') if isinstance(got, bytes) else '?'} times: k is {got!r}\n" + c.history()


def forward_bounced(seed: int = 3) -> None:
    """A request forwarded to a leader that is not serving yet comes back as
    "nothing ran"; the follower must route it again (not wait the whole
    forward timeout, nor drop it as a duplicate)."""
    w = World(seed, replicas=3, shards=1, faults=Faults())
    c = Client(w)
    w.run_until(2000)
    old = wait_for_leader(w, 0)
    w.crash(old)
    while True:  # a new leader that does not serve yet, and a follower that knows it
        w.run_until(w.now + 0.1)
        leaders = w.leaders(0)
        if leaders:
            new = leaders[0]
            follower = [n for n in w.members[0][0] if n not in (new, old)][0]
            if not w.nodes[new].core.replica.serving and w.nodes[follower].core.paxos.known_leader() == new:
                break
        assert w.now < 5000, "no election"
    box = c.submit(follower, [[b"SET", b"x", b"1"]], "SET x 1 via the follower")
    got = c.wait(box, 1000)
    assert got is not None and not isinstance(got, ErrorReply), (
        f"a bounced forward answered {got!r} after {w.now - box.get('t', w.now):.0f} ms\n" + c.history()
    )


# -- a forward whose leader hands over keeps its answer --------------------------------------------
def forward_across_handover(seed: int = 3) -> None:
    """A follower forwards SET to the leader, which runs it; the reply is slow
    to come back, and meanwhile the leader hands leadership over and the
    follower hears of the new leader. The write succeeded: the client must be
    told so, not "outcome unknown"."""
    w = World(seed, replicas=3, shards=1, faults=Faults())
    c = Client(w)
    w.run_until(2000)
    leader = wait_for_leader(w, 0)
    follower, target = sorted(n for n in w.members[0][0] if n != leader)
    held: list = []
    send = w.send

    def hold_replies(src: int, dst: int, msg: Any) -> None:
        if type(msg) is ForwardReply and src == leader and dst == follower:
            held.append((src, dst, msg))
            return
        send(src, dst, msg)

    w.send = hold_replies
    box = c.submit(follower, [[b"SET", b"x", b"1"]], "SET x 1 via a follower")
    deadline = w.now + 2000
    while not held:
        w.run_until(w.now + 1)
        assert w.now < deadline, "the leader never answered the forward\n" + c.history()
    assert w.nodes[leader].core.paxos.transfer_leadership(target)
    w.nodes[leader].pump()
    deadline = w.now + 3000
    while w.nodes[follower].core.leader_of(0) != target:
        w.run_until(w.now + 1)
        assert w.now < deadline, "the follower never heard of the new leader\n" + c.history()
    w.run_until(w.now + 50)  # the follower's ticks see the new leader while the reply is away
    w.send = send
    for msg in held:
        send(*msg)
    got = c.wait(box, 2000)
    assert got == SimpleString("OK"), (
        f"the forwarded SET answered {got!r}\n" + c.history()
    )
    assert c.wait(c.submit(target, [[b"GET", b"x"]], "GET x")) == b"1"


# -- resharding: the export waits for locks taken before the freeze -------------------------------------
def reshard_export_waits(seed: int = 2) -> None:
    """Shard 2 coordinates T: MULTI SET a T; SET c T, blind writes, ``a`` on
    shard 0, ``c`` on shard 2. Shard 0 has granted T's lock on ``a`` and T's
    install there is held back, when shard 0's slot of ``a`` is frozen and
    exported to shard 1. The export must wait for T's install: a copy taken
    before it would leave shard 1 with a's old value once it owns the slot,
    and T acknowledged."""
    w = World(seed, replicas=3, shards=3, faults=Faults())
    c = Client(w)
    w.run_until(2000)
    leaders = [wait_for_leader(w, s) for s in range(3)]
    a, cc = key_on(0, 3, b"a"), key_on(2, 3, b"c")
    assert c.wait(c.submit(leaders[0], [[b"SET", a, b"old"]], "SET a old")) == SimpleString("OK"), c.history()
    held: list = []
    send = w.send

    def hold_install(src: int, dst: int, msg: Any) -> None:
        if type(msg) is TxnInstall and msg.shard == 0 and not held:
            held.append((src, dst, msg))
            return
        send(src, dst, msg)

    w.send = hold_install
    t = c.submit(leaders[2], [[b"SET", a, b"T"], [b"SET", cc, b"T"]], "T: MULTI SET a T; SET c T", multi=True)
    deadline = w.now + 2000
    while not held and w.now < deadline:
        w.run_until(w.now + 1)
    assert held, "T's install to shard 0 was never sent\n" + c.history()
    w.send = send
    slot = b"%d" % key_slot(a)
    move = b"77"

    def step(shard: int, *args: bytes, limit_ms: float = 5000.0) -> Any:
        got = c.wait(c.submit(leaders[shard], [[b"MAKO", b"SLOTS", *args]], f"{args[0].decode()} at {shard}"),
                     limit_ms)
        assert got is not None and not isinstance(got, ErrorReply), f"{args}: {got!r}\n" + c.history()
        return got

    step(1, b"IMPORTING", slot, slot, b"0", move)
    # The export right behind the freeze, before its reply (which waits for
    # T too, with ack durable; an operator need not wait for it, and with
    # ack speculative it does not).
    freeze = c.submit(leaders[0], [[b"MAKO", b"SLOTS", b"FREEZE", slot, slot, b"1", move]], "FREEZE at 0")
    export = c.submit(leaders[0], [[b"MAKO", b"SLOTS", b"EXPORT", slot, slot, move, b"", b"100"]], "EXPORT at 0")
    w.run_until(w.now + 300)
    w.send(*held[0])  # T's install reaches shard 0 at last
    assert c.wait(freeze) == SimpleString("OK"), c.history()
    got = c.wait(export)
    assert got is not None and not isinstance(got, ErrorReply), c.history()
    more, _cursor, items = got
    assert more == b"0"
    if items:
        step(1, b"IMPORT", slot, slot, b"0", move, *items)
    step(1, b"OWN", slot, slot, move)
    while step(0, b"DROP", slot, slot, move):
        pass
    assert c.wait(t) == [SimpleString("OK"), SimpleString("OK")], "T was not acknowledged\n" + c.history()
    got = c.wait(c.submit(leaders[1], [[b"GET", a]], "GET a at shard 1"))
    assert got == b"T", f"the move lost T's write: a is {got!r}\n" + c.history()


# -- resharding: the export's reply waits until what it copied is final -----------------------------------
def reshard_export_final(seed: int = 3) -> None:
    """T: MULTI SET a new; SET r x, coordinated by shard 0, is installed at
    shard 0 but can never be replicated at shard 2 (its leader is cut off
    from its followers), so T must be rolled back. Meanwhile a's slot moves
    from shard 0 to shard 1. The export must not answer with a = new before
    T's fate is known: once rolled back, a is "old" everywhere, and the copy
    at shard 1 must say so."""
    w = World(seed, replicas=3, shards=3, faults=Faults())
    c = Client(w)
    w.run_until(3000)
    for s in range(3):
        wait_for_leader(w, s)
    a, r = key_on(0, 3, b"a"), key_on(2, 3, b"r")
    assert c.wait(c.submit(serving_leader(w, 0), [[b"SET", a, b"old"]], "SET a old")) == SimpleString("OK")
    l2 = serving_leader(w, 2)
    others = set(w.members[0][0]) | set(w.members[1][0])
    w.partition = [others | {l2}, others | (set(w.members[2][0]) - {l2})]
    w.run_until(w.now + 20)
    t = c.submit(serving_leader(w, 0), [[b"SET", a, b"new"], [b"SET", r, b"x"]], "T: MULTI SET a new; SET r x",
                 multi=True)
    w.run_until(w.now + 30)
    slot = b"%d" % key_slot(a)
    move = b"91"

    def step(shard: int, *args: bytes, tries: int = 20) -> Any:
        for _ in range(tries):
            leader = wait_for_leader(w, shard)
            got = c.wait(c.submit(leader, [[b"MAKO", b"SLOTS", *args]], f"{args[0].decode()} at {shard}"), 3000)
            if got is not None and not isinstance(got, ErrorReply):
                return got
            assert got is None or got.text.startswith(("TRYAGAIN", "CLUSTERDOWN")), f"{args}: {got!r}\n" + c.history()
            w.run_until(w.now + 50)
        raise AssertionError(f"{args} never succeeded\n" + c.history())

    step(1, b"IMPORTING", slot, slot, b"0", move)
    step(0, b"FREEZE", slot, slot, b"1", move)
    export = c.submit(wait_for_leader(w, 0), [[b"MAKO", b"SLOTS", b"EXPORT", slot, slot, move, b"", b"100"]],
                      "EXPORT at 0")
    # Shard 2's followers elect a leader that never saw T's part: T is rolled back.
    w.run_until(w.now + 1500)
    w.partition = None
    got = c.wait(export)
    if got is None or isinstance(got, ErrorReply):
        got = step(0, b"EXPORT", slot, slot, move, b"", b"100")
    _more, _cursor, items = got
    if items:
        step(1, b"IMPORT", slot, slot, b"0", move, *items)
    step(1, b"OWN", slot, slot, move)
    while step(0, b"DROP", slot, slot, move):
        pass
    settle(w)
    assert not isinstance(c.wait(t), list), "T was acknowledged though shard 2 never replicated its part\n" + c.history()
    got = c.wait(c.submit(wait_for_leader(w, 1), [[b"GET", a]], "GET a at shard 1"))
    assert got == b"old", f"the move copied T's rolled-back write: a is {got!r}\n" + c.history()
