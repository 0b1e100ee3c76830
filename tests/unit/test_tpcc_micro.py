"""``bench micro``'s key choice: Zipf skew and keys placed on their shard; its procedures in-process."""

from __future__ import annotations

import random
from collections import Counter

import pytest

import makod.procs  # noqa: F401  (registers the procedures)
from makod.config import default_config_dict, parse_config
from makod.core.slots import SlotMap
from makoctl.bench.micro import KeySpace, Zipf
from tests.unit.test_tpcc_procs import Db


def test_zipf_uniform_and_skewed() -> None:
    n = 1000
    gen = Zipf(n, 0.0, random.Random(1))
    uniform = Counter(gen.next() for _ in range(50_000))
    assert min(uniform) == 0 and max(uniform) == n - 1
    assert uniform.most_common(1)[0][1] < 3 * 50_000 / n
    gen = Zipf(n, 0.99, random.Random(1))
    skewed = Counter(gen.next() for _ in range(50_000))
    assert min(skewed) >= 0 and max(skewed) <= n - 1
    # P(rank 0) = 1 / zeta(n, 0.99), about 13% for n = 1000; rank 1 about half of that
    assert 0.11 < skewed[0] / 50_000 < 0.15
    assert 1.6 < skewed[0] / skewed[1] < 2.4
    assert Zipf(1, 0.9, random.Random(1)).next() == 0


@pytest.mark.parametrize("shards", [1, 2, 3])
def test_keys_live_on_their_shard(shards: int) -> None:
    cfg = parse_config(default_config_dict(shards, 1, 20000), "<test>")
    slots = SlotMap([s.slots for s in cfg.shards])
    space = KeySpace(slots, 1001)
    assert sum(space.per_shard(s) for s in range(shards)) == 1001
    seen = set()
    for s in range(shards):
        start, end = space.range(s)
        for rank in range(space.per_shard(s)):
            key = space.key(s, rank)
            assert slots.shard_of(key) == s and start <= key < end
            seen.add(int(key[-10:]))
    assert seen == set(range(1001))


def test_micro_procedures() -> None:
    db = Db()
    keys = [b"{m}k%010d" % i for i in range(5)]
    db.call("micro.load", {"rows": [[k, 0] for k in keys]})
    assert db.call("micro.txn", {"r": keys[:2], "w": [keys[2], keys[2], keys[3]]}) == 0
    assert db.call("micro.txn", {"r": [keys[2], keys[3], b"{m}absent"], "w": []}) == 3
    assert db.call("micro.sum", {"start": b"{m}k", "end": b"{m}k\xff"}) == [5, 3]
