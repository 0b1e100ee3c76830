"""Hot keys held for a retried cross-shard transaction (makod/core/coord_reserve.py):
what is held, what it blocks, and that every way out lets go of it. The
simulator runs it under faults (tests/sim/test_hot_key_sim.py)."""

from __future__ import annotations

import random

import pytest

from makod.core.context import DirectContext, KeyLocked
from makod.core.coord_reserve import HotKeyReservations, Reserved
from makod.core.coord_txn import DistTxn
from makod.kv.keyspace import Keyspace


class _Replica:
    def __init__(self) -> None:
        self.locks: dict = {}
        self.lock_released = False


class _Cfg:
    txn_timeout_ms = 2000


class _Node:
    def __init__(self) -> None:
        self.replica = _Replica()
        self.mono_ms = 1000.0
        self.cfg = _Cfg()


class _Coord(HotKeyReservations):
    def __init__(self) -> None:
        self.node = _Node()
        self.active: dict = {}
        self.reservations: dict = {}


def _txn(coord: _Coord, attempt: int, writes: list[bytes], seq: int = 1) -> DistTxn:
    txn = DistTxn((1, 1, seq), None, None)
    txn.attempt = attempt
    txn.local_writes = writes
    coord.active[txn.id] = txn
    return txn


def test_a_first_attempt_holds_nothing_a_retry_holds_what_it_wrote_here():
    coord = _Coord()
    first = _txn(coord, 1, [b"w1", b"d1"])
    coord._reserve(first)
    assert coord.node.replica.locks == {} and first.reserved == []
    retry = _txn(coord, 2, [b"w1", b"d1"], seq=2)
    coord._reserve(retry)
    locks = coord.node.replica.locks
    assert set(locks) == {b"w1", b"d1"} and all(type(v) is Reserved for v in locks.values())
    assert retry.reserved == [b"w1", b"d1"]


def test_a_retry_waits_while_another_holds_one_of_its_keys_then_takes_them():
    coord = _Coord()
    node = coord.node
    node.replica.locks[b"w1"] = (2, 7, 9)  # a prepared transaction's lock
    txn = _txn(coord, 3, [b"w1", b"d1"])
    assert coord._reserve(txn) is False  # it would fail at its prepare: wait
    assert txn.reserved == [] and set(node.replica.locks) == {b"w1"}
    node.mono_ms += 500
    assert coord._reserve(txn) is False  # still held
    del node.replica.locks[b"w1"]
    assert coord._reserve(txn) is True
    assert txn.reserved == [b"w1", b"d1"] and txn.waiting_since is None


def test_a_retry_stops_waiting_after_the_transaction_timeout():
    coord = _Coord()
    node = coord.node
    node.replica.locks[b"w1"] = (2, 7, 9)
    txn = _txn(coord, 3, [b"w1", b"d1"])
    assert coord._reserve(txn) is False
    node.mono_ms += node.cfg.txn_timeout_ms
    assert coord._reserve(txn) is True  # runs anyway, holding what is free
    assert node.replica.locks[b"w1"] == (2, 7, 9) and txn.reserved == [b"d1"]
    coord._release(txn)
    assert node.replica.locks == {b"w1": (2, 7, 9)}  # not ours: untouched


def test_a_reserved_key_makes_this_shards_own_transactions_wait():
    coord = _Coord()
    txn = _txn(coord, 2, [b"w1"])
    coord._reserve(txn)
    ks = Keyspace()
    ctx = DirectContext(ks, 5, (5,), (4,), 0, random.Random(0), locks=coord.node.replica.locks)
    with pytest.raises(KeyLocked):
        ctx.get(b"w1")
    assert ctx.get(b"other") is None  # anything else runs
    coord._release(txn)
    assert coord.node.replica.lock_released
    ctx = DirectContext(ks, 6, (6,), (5,), 0, random.Random(0), locks=coord.node.replica.locks)
    assert ctx.get(b"w1") is None


def test_release_keeps_a_lock_taken_over_by_the_prepare():
    coord = _Coord()
    txn = _txn(coord, 2, [b"w1"])
    coord._reserve(txn)
    coord.node.replica.locks.clear()  # the node stopped leading: every lock dropped
    coord.node.replica.locks[b"w1"] = (3, 1, 1)  # and another took the key since
    coord._release(txn)
    assert coord.node.replica.locks == {b"w1": (3, 1, 1)}
    assert coord.reservations == {} and txn.reserved == []


def test_a_reservation_whose_transaction_is_gone_is_dropped_at_the_next_tick():
    coord = _Coord()
    txn = _txn(coord, 2, [b"w1", b"d1"])
    coord._reserve(txn)
    coord._drop_orphan_reservations()
    assert set(coord.node.replica.locks) == {b"w1", b"d1"}  # still active: kept
    del coord.active[txn.id]  # ended by a path that forgot to release (none should)
    coord._drop_orphan_reservations()
    assert coord.node.replica.locks == {} and coord.reservations == {}
    assert coord.node.replica.lock_released


def test_luigi_never_reserves():
    from makod.core.luigi import LuigiCoordinator

    assert LuigiCoordinator.reserves_on_retry is False
