"""Checks on a finished run: replicas converge, nothing acknowledged is lost,
nothing happens twice, and the history is linearizable.

The history uses append-only values with unique marks, so linearizability of
each key reduces to checks on one list (the key's final value, which the
converged replicas agree on):

* every mark appears at most once (no write applied twice);
* every acknowledged append appears (no acknowledged write lost);
* appends keep real-time order: if A finished before B started, A comes first;
* every read returns a prefix of the final list;
* a read contains every append that finished before the read started, and
  no append that started after the read finished;
* reads keep real-time order: a read that finished before another started
  returned a list no longer than the later one's.

Together these give a total order that respects real time in which every
read returns exactly the appends before it: a linearization.
"""

from __future__ import annotations

from makod.core.records import KIND_STRING
from makod.sim.workload import Op


class CheckFailed(AssertionError):
    pass


def replica_states(world) -> dict[int, dict[bytes, tuple]]:
    out = {}
    for node_id, node in world.nodes.items():
        if node is None:
            continue
        ks = node.core.ks
        out[node_id] = {k: (r.kind, _freeze(r.value)) for k, r in ks.data.items()}
    return out


def _freeze(value):
    if isinstance(value, dict):
        return tuple(sorted(value.items()))
    return value


def check_convergence(world) -> dict[bytes, tuple]:
    states = replica_states(world)
    applied = {i: n.core.applied_slot for i, n in world.nodes.items() if n is not None}
    if len(set(applied.values())) != 1:
        raise CheckFailed(f"seed {world.seed}: replicas applied different prefixes: {applied}")
    reference_id = min(states)
    reference = states[reference_id]
    for node_id, state in states.items():
        if state != reference:
            diff = sorted(set(state.items()) ^ set(reference.items()))[:5]
            raise CheckFailed(
                f"seed {world.seed}: replica n{node_id} differs from n{reference_id}: {diff}"
            )
    return reference


def check_history(seed: int, history: list[Op], final: dict[bytes, tuple]) -> dict[str, int]:
    by_key: dict[bytes, list[Op]] = {}
    for op in history:
        by_key.setdefault(op.key, []).append(op)
    checked = {"appends": 0, "reads": 0, "acked": 0}
    for key, ops in by_key.items():
        if key == b"counter":
            _check_counter(seed, ops, final.get(key))
            continue
        raw = final.get(key)
        if raw is not None and raw[0] != KIND_STRING:
            raise CheckFailed(f"seed {seed}: {key!r} is not a string at the end")
        marks = [m for m in (raw[1] if raw else b"").split(b",") if m]
        position: dict[int, int] = {}
        for i, mark in enumerate(marks):
            op_id = int(mark)
            if op_id in position:
                raise CheckFailed(f"seed {seed}: append {op_id} applied twice to {key!r}")
            position[op_id] = i
        appends = {op.op_id: op for op in ops if op.kind == "append"}
        for op_id in position:
            if op_id not in appends:
                raise CheckFailed(f"seed {seed}: {key!r} holds append {op_id} that nobody issued")
        for op in appends.values():
            checked["appends"] += 1
            if op.ok:
                checked["acked"] += 1
                if op.op_id not in position:
                    raise CheckFailed(f"seed {seed}: acknowledged append {op.op_id} to {key!r} was lost")
                if op.result != sum(len(b"%d," % int(m)) for m in marks[: position[op.op_id] + 1]):
                    raise CheckFailed(
                        f"seed {seed}: append {op.op_id} answered length {op.result}, "
                        f"but its place in the final value gives another"
                    )
        # Real-time order between appends that happened. Only an acknowledged
        # append's interval is closed: one answered with an error (outcome
        # unknown) may still take effect after its client gave up.
        done = sorted(
            (op for op in appends.values() if op.op_id in position and op.ok),
            key=lambda o: o.complete_ms,
        )
        present = [op for op in appends.values() if op.op_id in position]
        for a in done:
            for b in present:
                if a.complete_ms < b.invoke_ms and position[a.op_id] > position[b.op_id]:
                    raise CheckFailed(
                        f"seed {seed}: append {a.op_id} finished before {b.op_id} started, "
                        f"but comes after it in {key!r}"
                    )
        # Reads.
        reads = [op for op in ops if op.kind == "get" and op.ok]
        for r in reads:
            checked["reads"] += 1
            value = r.result or b""
            got = [int(m) for m in value.split(b",") if m]
            if [int(m) for m in marks[: len(got)]] != got:
                raise CheckFailed(f"seed {seed}: read {r.op_id} of {key!r} returned {value!r}, not a prefix of the final value")
            seen = set(got)
            for a in appends.values():
                if a.ok and a.complete_ms is not None and a.complete_ms < r.invoke_ms and a.op_id not in seen:
                    raise CheckFailed(
                        f"seed {seed}: read {r.op_id} of {key!r} missed append {a.op_id}, which finished before it started (stale read)"
                    )
                if a.op_id in seen and a.invoke_ms > r.complete_ms:
                    raise CheckFailed(f"seed {seed}: read {r.op_id} saw append {a.op_id} from its future")
        reads.sort(key=lambda o: o.invoke_ms)
        for r1 in reads:
            for r2 in reads:
                if r1.complete_ms < r2.invoke_ms and len(r1.result or b"") > len(r2.result or b""):
                    raise CheckFailed(
                        f"seed {seed}: read {r2.op_id} of {key!r} returned less than the earlier read {r1.op_id}"
                    )
    return checked


def _check_counter(seed: int, ops: list[Op], final: tuple | None) -> None:
    incrs = [op for op in ops if op.kind == "incr"]
    acked = [op for op in incrs if op.ok]
    maybe = [op for op in incrs if not op.ok]
    value = int(final[1]) if final is not None else 0
    if not len(acked) <= value <= len(acked) + len(maybe):
        raise CheckFailed(
            f"seed {seed}: counter is {value} after {len(acked)} acknowledged and {len(maybe)} "
            f"unknown increments"
        )
    results = sorted(op.result for op in acked)
    if len(set(results)) != len(results):
        raise CheckFailed(f"seed {seed}: two INCRs returned the same value")
