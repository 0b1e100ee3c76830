"""The bound on a transaction's bytes (max_txn_bytes) under faults: set small,
slots split by bytes and big transactions are refused, with every invariant
still checked (the runner's checks: agreement, convergence, no acknowledged
write lost, serializable histories)."""

from __future__ import annotations

import pytest

from makod.core.entries import ENTRY_BATCH, decode_entry
from makod.core.paxos import Paxos
from makod.core.replica import ReplicaCore
from makod.kv.replies import ErrorReply
from makod.sim.runner import run_seed

LIMIT = 128  # a MULTI of a few APPENDs passes it


@pytest.mark.parametrize("protocol", ["mako", "luigi"])
def test_small_bound_splits_slots_and_refuses_big_transactions(monkeypatch, protocol):
    proposed: list[tuple[int, int]] = []  # (bytes, transactions) of each batch proposed
    oversized_batches = [0]
    propose, encode_first = Paxos.propose, ReplicaCore._encode_first

    def counting_propose(self, value):
        entry = decode_entry(value)
        if entry is not None and entry[0] == ENTRY_BATCH:
            proposed.append((len(value), len(entry[3])))
        return propose(self, value)

    def counting_encode(self, take, seq):
        value, marker = encode_first(self, take, seq)
        if len(value) > LIMIT and take > 1:
            oversized_batches[0] += 1  # maybe_propose halves it
        return value, marker

    monkeypatch.setattr(Paxos, "propose", counting_propose)
    monkeypatch.setattr(ReplicaCore, "_encode_first", counting_encode)
    refused: set[str] = set()
    for seed, profile in [(s, p) for s in range(6) for p in ("default", "harsh")]:
        result = run_seed(seed, shards=2, protocol=protocol, profile=profile, txn_ratio=0.5, max_txn_bytes=LIMIT)
        for op in result.history:
            if isinstance(op.result, ErrorReply) and " too large: " in op.result.text:
                refused.add(op.result.text.split(":")[1].split(" bytes")[0].strip(" 0123456789"))
    # Writes refused at the leader or coordinator, reads at another shard's
    # leader (replies, bounded at 8x, are left to tests/integration/test_txn_size.py).
    assert {"it writes", "it reads"} <= refused, refused
    assert oversized_batches[0] > 0
    # Many transactions share a slot only within LIMIT; one alone may take
    # more: its ops fit LIMIT, its coordinator record (all its ops) too.
    assert all(size <= LIMIT for size, txns in proposed if txns > 1)
    assert any(txns > 1 for _size, txns in proposed)
    assert max(size for size, _txns in proposed) <= 2 * LIMIT + 200
