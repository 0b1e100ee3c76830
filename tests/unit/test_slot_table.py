"""A shard's slot table (core/slot_table.py) and a node's slot map built on it
(core/slots.py): ownership follows the table alone, hints never override
it, moving slots are BUSY, and versions carry the move that made a slot ours."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from makod.core import slot_table
from makod.core.slot_table import AWAY, FROZEN, IMPORTING, OWNED, PURGING, TableError
from makod.core.slots import BUSY, SlotMap, moved_reason, parse_moved
from makod.kv.hashslot import NUM_SLOTS, key_slot


class Rec:
    def __init__(self, value) -> None:
        self.value = value


def _map(shard: int = 0) -> tuple[SlotMap, dict]:
    box: dict = {"rec": None}
    return SlotMap([[(0, 8191)], [(8192, 16383)]], shard, lambda: box["rec"]), box


ops = st.lists(st.tuples(st.integers(0, NUM_SLOTS - 1), st.integers(0, 300),
                         st.sampled_from([OWNED, FROZEN, IMPORTING, PURGING, AWAY]),
                         st.integers(-1, 3), st.integers(0, 5)), max_size=12)


@given(ops)
def test_ranges_round_trip_and_stay_sorted(changes):
    table = slot_table.initial([(0, 8191)])
    for lo, width, state, peer, move in changes:
        hi = min(NUM_SLOTS - 1, lo + width)
        table = slot_table.with_range(table, lo, hi, state, peer, move)
        assert slot_table.states_in(table, lo, hi) == {(state, peer, move)}
    assert slot_table.decode(table) == table
    assert slot_table.compress(slot_table.per_slot(table)) == table
    bounds = [(lo, hi) for lo, hi, *_ in table]
    assert all(a[1] < b[0] for a, b in zip(bounds, bounds[1:]))


@pytest.mark.parametrize("bad", [
    "x", [[0, 1, 2]], [[5, 4, OWNED, -1, 0]], [[0, 10, OWNED, -1, 0], [5, 20, OWNED, -1, 0]],
    [[0, NUM_SLOTS, OWNED, -1, 0]], [[0, 1, 9, -1, 0]], [[0, 1, OWNED, -1, "m"]],
])
def test_a_damaged_table_is_refused(bad):
    with pytest.raises(TableError):
        slot_table.decode(bad)


def test_owned_ranges_merge_across_moves():
    table = slot_table.initial([(0, 99)])
    table = slot_table.with_range(table, 100, 199, OWNED, -1, 7)
    table = slot_table.with_range(table, 300, 399, OWNED, -1, 8)
    assert slot_table.owned_ranges(table) == [(0, 199), (300, 399)]


def test_the_table_is_the_only_authority_on_our_slots():
    m, box = _map(0)
    assert m.shard_of_slot(5) == 0 and m.shard_of_slot(9000) == 1 and not m.busy
    table = slot_table.with_range(slot_table.initial([(0, 8191)]), 0, 99, FROZEN, 1, 5)
    box["rec"] = Rec(table)
    assert m.shard_of_slot(5) == BUSY and m.busy and m.shard_of_slot(100) == 0
    table = slot_table.with_range(table, 0, 99, PURGING, 1, 5)
    box["rec"] = Rec(table)
    assert m.shard_of_slot(5) == 1 and m.busy  # old copies still there: whole-keyspace reads wait
    table = slot_table.with_range(table, 0, 99, AWAY, 1, 5)
    box["rec"] = Rec(table)
    assert m.shard_of_slot(5) == 1 and not m.busy
    # Hints: for slots not ours only, and never naming us.
    assert not m.learn(200, 300, 1) and m.shard_of_slot(250) == 0
    assert not m.learn(9000, 9000, 0) and m.shard_of_slot(9000) == 1
    assert not m.learn(0, 10, 1)  # routed there already: no change
    assert not m.learn(5, 4, 1) and not m.learn(0, NUM_SLOTS, 1) and not m.learn(0, 1, 2)
    # A slot coming here is BUSY while it imports, ours once owned.
    table = slot_table.with_range(table, 9000, 9009, IMPORTING, 1, 6)
    box["rec"] = Rec(table)
    assert m.shard_of_slot(9005) == BUSY
    m.learn(9005, 9005, 1)
    assert m.shard_of_slot(9005) == BUSY  # a stale hint does not bypass the import
    box["rec"] = Rec(slot_table.with_range(table, 9000, 9009, OWNED, -1, 6))
    assert m.shard_of_slot(9005) == 0
    assert m.ranges_of(0) == [(100, 8191), (9000, 9009)]


def test_a_hint_moves_another_shards_slot():
    m = SlotMap([[(0, 5000)], [(5001, 10000)], [(10001, 16383)]], 0, lambda: None)
    assert m.shard_of_slot(6000) == 1
    assert m.learn(6000, 6010, 2) and m.shard_of_slot(6005) == 2 and not m.learn(6000, 6010, 2)


def test_a_table_change_forgets_hints_about_the_slots_it_changed():
    m, box = _map(0)
    table = slot_table.with_range(slot_table.initial([(0, 8191)]), 0, 9, AWAY, 1, 5)
    box["rec"] = Rec(table)
    m.learn(0, 9, 1)
    box["rec"] = Rec(slot_table.with_range(table, 0, 9, IMPORTING, 1, 6))  # coming back
    box["rec"] = Rec(slot_table.with_range(table, 0, 9, AWAY, 1, 6))       # and away again, to 1
    assert m.shard_of_slot(3) == 1


def test_versions_carry_the_move_that_made_a_slot_ours():
    m, box = _map(0)
    key = b"k"
    slot = key_slot(key)
    assert m.tag_of(key) == 0  # owned from the start: versions as they always were
    table = slot_table.initial([(0, 8191)] if slot < 8192 else [])
    box["rec"] = Rec(slot_table.with_range(table, slot, slot, OWNED, -1, 12345))
    tag = m.tag_of(key)
    assert tag == slot_table.version_tag(12345) and tag > 0 and tag < 1 << 63
    assert m.tag_of(b"\xff1000002:table") == 0  # hidden keys are the shard's own


def test_only_a_config_slot_the_table_lists_is_ours():
    # The config gives us 0-8191, but our table (say the file was edited) lists less.
    m, box = _map(0)
    box["rec"] = Rec([[0, 99, OWNED, -1, 0]])
    assert m.shard_of_slot(50) == 0 and m.shard_of_slot(5000) == BUSY


@given(st.text(max_size=200))
def test_a_peers_moved_reason_never_breaks_the_parser(text):
    for slot, shard in parse_moved("moved" + text):
        assert isinstance(slot, int) and isinstance(shard, int)


def test_moved_reasons_round_trip():
    assert parse_moved(moved_reason([[5, 1], [7, BUSY]])) == [(5, 1), (7, BUSY)]
    assert parse_moved(moved_reason([])) == []
