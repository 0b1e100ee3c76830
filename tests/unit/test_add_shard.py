"""A shard added to a running cluster (makoctl cluster add-shard): vectors
made before it are shorter and read as zero-padded, watermarks and slot
maps grow, and --rebalance's plan gives every shard an even share."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from makod.core.context import DependencyInDoubt, vec_join, vec_max
from makod.core.slots import SlotMap
from makod.core.watermark import COVERED, EPOCH_SHIFT, PENDING, WatermarkTable
from makod.kv.hashslot import NUM_SLOTS
from makoctl.cluster_shards import rebalance_ranges

E1 = 1 << EPOCH_SHIFT
E2 = 2 << EPOCH_SHIFT

vectors = st.lists(st.integers(0, 1 << 40), min_size=1, max_size=5).map(tuple)


@given(vectors, vectors)
def test_a_shorter_vector_reads_as_zero_padded(a, b):
    n = max(len(a), len(b))
    padded_a, padded_b = a + (0,) * (n - len(a)), b + (0,) * (n - len(b))
    want = tuple(map(max, padded_a, padded_b))
    assert vec_max(a, b) == want
    assert vec_max(b, a) == want


def test_join_across_lengths_still_judges_epochs():
    wm = WatermarkTable(3)
    # Same epoch: the longer vector's new shard clock is simply kept.
    assert vec_join((E1 + 5, 0), (E1 + 3, 0, E1 + 9), wm) == (E1 + 5, 0, E1 + 9)
    # An older epoch's clock of shard 0 not yet known to survive: refused,
    # whatever the lengths.
    wm.observe(0, 2, E2 + 1)
    with pytest.raises(DependencyInDoubt):
        vec_join((E1 + 5,), (E2 + 1, 0, 0), wm)


def test_watermarks_grow_and_a_shard_not_yet_known_is_pending():
    wm = WatermarkTable(2)
    assert wm.status((0, 0, 0)) == COVERED  # zeros name no dependency
    assert wm.status((0, 0, E1 + 1)) == PENDING  # shard 2 is not known here yet
    version = wm.version
    wm.add_shards(3)
    assert wm.version > version
    assert wm.status((0, 0, E1 + 1)) == PENDING
    wm.observe(2, 1, E1 + 4)
    assert wm.status((0, 0, E1 + 1)) == COVERED
    assert wm.status((0, 0)) == COVERED  # a vector from before the shard came


def test_a_slot_map_grows_with_no_slot_for_the_new_shard():
    m = SlotMap([[(0, NUM_SLOTS - 1)]], 0)
    assert m.shard_of_slot(42) == 0
    m.add_shards(2)
    assert m.num_shards == 2
    assert m.ranges_of(1) == []
    assert m.shard_of_slot(42) == 0
    assert m.learn(100, 200, 1) is False  # our own slots follow our table, never a hint
    with pytest.raises(KeyError):
        m.tag_for_shard(1)


@pytest.mark.parametrize("owned, target, want", [
    # One shard grows to two: half moves, from the top.
    ([[(0, 16383)], []], 1, [(8192, 16383)]),
    # Two grow to three: shares 5462, 5461, 5461 (the first shards keep one more).
    ([[(0, 8191)], [(8192, 16383)], []], 2, [(5462, 8191), (13653, 16383)]),
    # Already even: nothing moves.
    ([[(0, 8191)], [(8192, 16383)]], 1, []),
    # A shard holding several ranges gives from its highest first.
    ([[(0, 99), (10000, 16383)], [(100, 9999)], []], 2, [(5561, 9999), (15362, 16383)]),
])
def test_rebalance_gives_every_shard_an_even_share(owned, target, want):
    got = rebalance_ranges(owned, target)
    assert got == want
    moved = sum(hi - lo + 1 for lo, hi in got)
    held = sum(hi - lo + 1 for lo, hi in owned[target])
    assert held + moved >= NUM_SLOTS // len(owned)


@given(st.integers(2, 8), st.data())
def test_rebalance_leaves_no_shard_far_from_its_share(count, data):
    # Random ownership of the whole keyspace by count-1 shards, then one new.
    cuts = sorted(data.draw(st.sets(st.integers(1, NUM_SLOTS - 1), min_size=count - 2, max_size=count - 2)))
    bounds = [0, *cuts, NUM_SLOTS]
    owned = [[(bounds[i], bounds[i + 1] - 1)] for i in range(count - 1)] + [[]]
    got = rebalance_ranges(owned, count - 1)
    given_away = {s: 0 for s in range(count)}
    for lo, hi in got:
        for s, ranges in enumerate(owned):
            for a, b in ranges:
                given_away[s] += max(0, min(b, hi) - max(a, lo) + 1)
    assert sum(given_away.values()) == sum(hi - lo + 1 for lo, hi in got)
    for s in range(count - 1):
        left = sum(b - a + 1 for a, b in owned[s]) - given_away[s]
        assert left <= NUM_SLOTS // count + 1
