"""Client-side caching's safety in the simulator: no write takes effect
without an invalidation after it.

A tracking client may cache a key's value until it hears the key changed
(or a null: drop everything). So for every list key, the writes whose marks
are in its final value must all be followed by an invalidation of that key
or a flush, emitted by some node no earlier than the newest of them was
invoked. The nodes emit them where transactions are released
(NodeCore.finish), where the active expiry deletes, and when a new leader
starts serving (a deposed leader dropped what it held). Delivery to the
clients (makod/net/tracking_sync.py) is outside the simulator.
"""

from __future__ import annotations

from typing import Any

from makod.kv.records import KIND_STRING


class TrackingCheckFailed(AssertionError):
    pass


def check_invalidations(seed: int, world: Any, history: list, final: dict[bytes, tuple]) -> int:
    """Raises TrackingCheckFailed; returns how many keys it checked."""
    invoked = {op.op_id: op.invoke_ms for op in history}
    checked = 0
    for key, (kind, value) in final.items():
        if kind != KIND_STRING or key == b"counter" or key.startswith(b"r") or not isinstance(value, bytes):
            continue
        try:
            marks = [int(m) for m in value.split(b",") if m]
        except ValueError:
            continue  # not a list of marks (a queue's or stream's token)
        newest = max((invoked.get(m // 10, float("-inf")) for m in marks), default=None)
        if newest is None:
            continue
        checked += 1
        last = max(world.invalidated_ms.get(key, float("-inf")), world.invalidated_all_ms)
        if last < newest:
            raise TrackingCheckFailed(
                f"seed {seed}: {key!r} was last written by a transaction invoked at {newest:.1f} ms, "
                f"but its last invalidation was at {last:.1f} ms: a client-side cache would keep a stale value"
            )
    return checked
