"""Luigi's per-leader timestamp order (makod/core/luigi_seq.py), on its own."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from makod.core.luigi_seq import WHOLE, Footprint, Sequencer


def R(*keys: bytes) -> Footprint:
    return Footprint(reads=keys)


def W(*keys: bytes) -> Footprint:
    return Footprint(writes=keys)


def ids(entries) -> list:
    return [e.txn for e in entries]


def test_read_read_is_no_conflict_but_read_write_is() -> None:
    assert not R(b"a").conflicts(R(b"a"))
    assert R(b"a").conflicts(W(b"a"))
    assert W(b"a").conflicts(R(b"a"))
    assert W(b"a").conflicts(W(b"a"))
    assert not W(b"a").conflicts(W(b"b"))
    assert Footprint(read_ranges=[(b"a", b"c")]).conflicts(W(b"b"))
    assert not Footprint(read_ranges=[(b"a", b"c")]).conflicts(R(b"b"))
    assert Footprint(write_ranges=[WHOLE]).conflicts(R(b"zzz"))
    assert not Footprint(read_ranges=[(b"a", b"c")]).conflicts(Footprint(write_ranges=[(b"c", b"d")]))


def test_separate_maps_bump_only_real_conflicts() -> None:
    seq = Sequencer()
    assert seq.propose(1, 100, R(b"k"), 0) == 100
    assert seq.agree(1, 100)
    [entry] = seq.startable(1_000)
    seq.start(entry)
    # A later reader arriving with a smaller timestamp is not bumped (read-read) ...
    assert seq.propose(2, 50, R(b"k"), 0) == 50
    # ... a writer is, above the started reader.
    assert seq.propose(3, 50, W(b"k"), 0) == 101
    assert seq.bumped == 1
    # A write to another key is not.
    assert seq.propose(4, 50, W(b"other"), 0) == 50


def test_unagreed_entry_blocks_only_conflicting_successors() -> None:
    seq = Sequencer()
    seq.propose(1, 10, W(b"a"), 0)  # never agreed (yet)
    seq.propose(2, 20, W(b"a"), 0)
    seq.propose(3, 30, W(b"b"), 0)
    seq.agree(2, 20)
    seq.agree(3, 30)
    assert ids(seq.startable(1_000)) == [3]
    # Agreed above 2: it repositions behind it, and 2 may go.
    seq.agree(1, 25)
    assert seq.repositioned == 1
    assert ids(seq.startable(1_000)) == [2, 3]


def test_started_entry_excludes_conflicts_until_finished() -> None:
    seq = Sequencer()
    for txn, t in ((1, 10), (2, 20)):
        seq.propose(txn, t, W(b"a"), 0)
        seq.agree(txn, t)
    [first] = seq.startable(1_000)
    seq.start(first)
    assert seq.startable(1_000) == []
    assert seq.try_local(R(b"a"), 1_000) is None
    assert seq.try_local(R(b"b"), 1_000) is not None
    seq.finish(1)
    assert ids(seq.startable(1_000)) == [2]


def test_waits_for_the_clock() -> None:
    seq = Sequencer()
    seq.propose(1, 5_000, W(b"a"), 0)
    seq.agree(1, 5_000)
    assert seq.startable(4_999) == []
    assert ids(seq.startable(5_000)) == [1]


def test_local_transactions_queue_behind_earlier_conflicts_and_bump() -> None:
    seq = Sequencer()
    seq.propose(1, 10, W(b"a"), 0)
    seq.agree(1, 10)
    assert seq.try_local(R(b"a"), 50) is None
    assert seq.enqueue_local((-1, -1, 1), R(b"a"), 50, 0, "payload")
    [remote] = seq.startable(100)  # the remote one (t=10) is first; the local waits
    assert remote.txn == 1
    seq.start(remote)
    assert seq.startable(100) == []
    seq.finish(1)
    [local] = seq.startable(100)
    assert local.payload == "payload"
    # The clock never goes back below what started.
    assert seq.clock_us(0) == 10
    seq.start(local)
    assert seq.clock_us(0) == 50


def test_duplicate_proposal_is_the_first_answer() -> None:
    seq = Sequencer()
    assert seq.propose(1, 10, W(b"a"), 0) == 10
    assert seq.propose(1, 99, W(b"a"), 0) == 10
    assert seq.agree(7, 10) is False


def test_expire_drops_only_unstarted_remote_entries() -> None:
    seq = Sequencer()
    seq.propose(1, 10, W(b"a"), 0)
    seq.propose(2, 10, W(b"b"), 0)
    seq.agree(2, 10)
    seq.start(seq.startable(100)[0])
    seq.enqueue_local((-1, -1, 1), W(b"c"), 100, 0, "p")
    assert ids(seq.expire(10_000, 1_000)) == [1]
    assert set(seq.entries) == {2, (-1, -1, 1)}


def test_queue_is_bounded() -> None:
    seq = Sequencer(max_entries=2)
    assert seq.propose(1, 1, W(b"a"), 0) is not None
    assert seq.propose(2, 1, W(b"a"), 0) is not None
    assert seq.propose(3, 1, W(b"a"), 0) is None


KEYS = [b"a", b"b", b"c"]
_fps = st.builds(
    lambda r, w: Footprint(reads=r, writes=w),
    st.sets(st.sampled_from(KEYS), max_size=2),
    st.sets(st.sampled_from(KEYS), max_size=2),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["arrive", "agree", "poll", "finish", "local"]), st.integers(0, 50), _fps),
                max_size=60))
def test_conflicting_transactions_start_in_agreed_order_and_never_overlap(steps) -> None:
    seq = Sequencer()
    wall = 0
    started: list = []  # (txn, t, fp) in start order
    running: dict = {}
    proposals: dict = {}
    next_id = 0
    for action, n, fp in steps:
        wall += n
        if action == "arrive":
            next_id += 1
            t = seq.propose(next_id, wall + n, fp, 0)
            proposals[next_id] = t
        elif action == "agree" and proposals:
            txn = sorted(proposals)[n % len(proposals)]
            entry = seq.entries.get(txn)
            if entry is not None and not entry.agreed:
                seq.agree(txn, entry.t + n % 3)  # another leader may have proposed more
        elif action == "poll":
            for entry in seq.startable(wall):
                for other in running.values():
                    assert not entry.fp.conflicts(other[1]), "two conflicting transactions overlap"
                seq.start(entry)
                running[entry.txn] = (entry.t, entry.fp)
                started.append((entry.txn, entry.t, entry.fp))
        elif action == "finish" and running:
            txn = sorted(running)[n % len(running)]
            del running[txn]
            seq.finish(txn)
        elif action == "local":
            t = seq.try_local(fp, wall)
            if t is not None:
                for other in running.values():
                    assert not fp.conflicts(other[1])
                started.append(("local", t, fp))
    # Among conflicting pairs, start order is timestamp order (ties go by id).
    for i, (_a, ta, fa) in enumerate(started):
        for _b, tb, fb in started[i + 1:]:
            if fa.conflicts(fb):
                assert ta <= tb, (ta, tb)
