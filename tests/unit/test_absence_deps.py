"""A deletion or FLUSH that is not final leaves its dependency vector behind
(makod/core/keyspace.py), and rolling back restores absences exactly."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from makod.kv.keyspace import Keyspace
from makod.kv.records import KIND_STRING, OP_DEL, OP_FLUSH, OP_SET

D1, D2 = (5, 0), (0, 9)


def snapshot(ks: Keyspace):
    return (
        {k: (r.value, r.version, r.deps) for k, r in ks.data.items()},
        dict(ks.tombstones), dict(ks.deletion_deps), ks.absent_floor, ks.absent_deps,
    )


def test_a_speculative_deletion_is_what_an_absence_depends_on():
    ks = Keyspace()
    ks.apply((OP_SET, b"a", KIND_STRING, b"old", None), 1, None)
    ks.apply((OP_DEL, b"a"), 2, D1, [])
    assert ks.absence_deps(b"a") == D1
    ks.finalize(b"a", 2)
    assert ks.absence_deps(b"a") is None


def test_a_speculative_flush_is_what_every_absence_depends_on():
    ks = Keyspace()
    ks.apply((OP_SET, b"a", KIND_STRING, b"old", None), 1, None)
    undo: list = []
    ks.apply((OP_FLUSH,), 3, D2, undo)
    assert ks.absence_deps(b"a") == D2 and ks.absence_deps(b"never") == D2
    ks.rollback(undo)
    assert ks.data[b"a"].value == b"old" and ks.absence_deps(b"never") is None


def test_stamp_gives_deletions_the_final_vector():
    ks = Keyspace()
    ks.apply((OP_SET, b"a", KIND_STRING, b"old", None), 1, None)
    ks.apply((OP_DEL, b"a"), 2, (0, 0), [])  # what the transaction knew mid-run
    ks.stamp({b"a"}, 2, D1, False)
    assert ks.absence_deps(b"a") == D1


ops = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.sampled_from([b"a", b"b"]), st.binary(max_size=3)),
        st.tuples(st.just("del"), st.sampled_from([b"a", b"b"])),
        st.tuples(st.just("flush")),
    ),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(before=ops, during=ops)
def test_rollback_restores_values_and_absences_exactly(before, during):
    ks = Keyspace()
    version = 0

    def run(op_list, undo, deps):
        nonlocal version
        for op in op_list:
            version += 1
            if op[0] == "set":
                ks.apply((OP_SET, op[1], KIND_STRING, op[2], None), version, deps, undo)
            elif op[0] == "del":
                ks.apply((OP_DEL, op[1]), version, deps, undo)
            else:
                ks.apply((OP_FLUSH,), version, deps, undo)

    run(before, [], D2)  # speculative state from other transactions
    saved = snapshot(ks)
    undo: list = []
    run(during, undo, D1)
    ks.rollback(undo)
    assert snapshot(ks) == saved
