"""Check a decoded peer message before it reaches a core.

Links are authenticated (peer_auth.py), so a bad message means a bug or a
version mismatch, not an attacker; either way it must close the link, never
raise inside the event loop or put an absurd number into a core (a ballot
near 2^63 persisted forever, a slot 2^40 that a later leader must fill).

The checks go by field name, since the same names mean the same things in
every message class (messages.py, txn_messages.py, requests.py).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from makod.core.messages import REGISTRY, Message, ballot_node

# Ballots are round * 256 + node id; slots, clocks and counters count events.
# Both stay far below these bounds in any real run.
MAX_BALLOT = 1 << 56
MAX_COUNTER = 1 << 53
MAX_SHARDS = 256  # shard ids are 0-255 (config.py)

_COUNTERS = (
    "from_slot", "chosen_upto", "first_slot", "commit", "match", "applied_slot", "clock", "index",
    "epoch", "round", "closed_below", "seq", "w",
)
_BOOLS = ("ok", "transfer", "last", "serving", "flush")


class BadPeerMessage(Exception):
    pass


def _arity(cls: type[Message]) -> tuple[int, int]:
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    required = sum(1 for p in params if p.default is inspect.Parameter.empty)
    return required, len(params)


_ARITY: dict[int, tuple[int, int]] = {}  # filled on first use: modules register classes as they load


def _int_in(value: Any, lo: int, hi: int) -> bool:
    return type(value) is int and lo <= value < hi


class Validator:
    def __init__(self, num_shards: int, node_ids: set[int] | None = None) -> None:
        """``node_ids``: the cluster's replicas; a ballot names one of them (None: any id)."""
        self.num_shards = num_shards

        def is_ballot(v: Any) -> bool:
            # A ballot naming no replica would become a leader id that no
            # table can name (it once crashed every role-change log line).
            return _int_in(v, 0, MAX_BALLOT) and (v == 0 or node_ids is None or ballot_node(v) in node_ids)

        self.checks: dict[str, Callable[[Any], bool]] = {
            # Read at each check: shards may be added (makoctl cluster add-shard).
            "shard": lambda v: _int_in(v, 0, self.num_shards),
            "participant_shard": lambda v: _int_in(v, 0, self.num_shards),
            "ballot": is_ballot,
            "promised": is_ballot,
            "txn": lambda v: type(v) in (list, tuple) and len(v) == 3 and all(_int_in(x, 0, 1 << 64) for x in v),
            "values": lambda v: type(v) is list and all(type(x) is bytes for x in v),
            "entries": lambda v: type(v) is list and all(
                type(e) in (list, tuple) and len(e) == 3 and _int_in(e[0], 0, MAX_COUNTER)
                and is_ballot(e[1]) and type(e[2]) is bytes for e in v),
            "rid": lambda v: _int_in(v, 0, 1 << 64),  # request ids: random high bits
            "reason": lambda v: type(v) is str,
            "result": lambda v: type(v) is bytes,
            "meta": lambda v: v is None or type(v) is bytes,
            "items": lambda v: type(v) is list,
            "keys": lambda v: type(v) is list,
            "lines": lambda v: type(v) is list and len(v) <= 10_000 and all(type(x) is str for x in v),
            "counter": lambda v: _int_in(v, 0, MAX_COUNTER),
            "origin": lambda v: _int_in(v, 0, 256),
            # A node that has heard of a shard added since sends longer vectors
            # (their extra clocks are zero until that shard holds slots).
            "deps": lambda v: v is None or (type(v) in (list, tuple) and len(v) <= MAX_SHARDS
                                            and all(type(x) is int for x in v)),
            # Luigi's timestamps and send times: wall-clock microseconds.
            "t": lambda v: _int_in(v, 0, 1 << 62),
            "sent_us": lambda v: _int_in(v, 0, 1 << 62),
            "owd_us": lambda v: _int_in(v, -(1 << 62), 1 << 62),  # clock offsets make it negative
            "footprint": _footprint_shape,
            # Pub/sub (pubsub_sync.py): GLOBAL or SHARDED, the channel and the message.
            "kind": lambda v: v in (0, 1) and type(v) is int,
            "channel": lambda v: type(v) is bytes,
            "payload": lambda v: type(v) is bytes,
            # Client-side caching (tracking_sync.py): a node's random boot id.
            "boot": lambda v: _int_in(v, 0, 1 << 62),
        }
        # Fields whose shape depends on the message: a range to read is
        # [start, end | None, limit | None, reverse]; one to validate adds the
        # [key, version] pairs seen.
        self.class_checks: dict[tuple[str, str], Callable[[Any], bool]] = {
            ("TxnRead", "ranges"): lambda v: type(v) is list and all(_range_spec(r, 4) for r in v),
            ("TxnRead", "keys"): lambda v: type(v) is list and all(type(k) is bytes for k in v),
            ("ForwardReply", "moved"): lambda v: v is None or (type(v) is list and len(v) <= 16384 and all(
                type(r) in (list, tuple) and len(r) == 3 and _int_in(r[0], 0, 16384) and _int_in(r[1], 0, 16384)
                and _int_in(r[2], 0, self.num_shards) for r in v)),
            ("TrackingInvalidate", "keys"): lambda v: type(v) is list and all(type(k) is bytes for k in v),
            ("TxnValidate", "reads"): lambda v: type(v) is list and all(
                type(p) in (list, tuple) and len(p) == 2 and type(p[0]) is bytes and type(p[1]) is int for p in v),
            ("TxnValidate", "ranges"): lambda v: type(v) is list and all(
                _range_spec(r, 5) and type(r[4]) is list and all(
                    type(p) in (list, tuple) and len(p) == 2 and type(p[0]) is bytes and type(p[1]) is int
                    for p in r[4]) for r in v),
        }
        for name in _COUNTERS:
            self.checks[name] = lambda v: _int_in(v, -1, MAX_COUNTER)
        for name in _BOOLS:
            self.checks[name] = lambda v: type(v) is bool

    def message(self, obj: Any, peer_id: int) -> Message:
        """The message ``obj`` (as unpacked) from authenticated node ``peer_id``, or BadPeerMessage."""
        if type(obj) is not list or not obj:
            raise BadPeerMessage("not a message array")
        code = obj[0]
        cls = REGISTRY.get(code) if type(code) is int else None
        if cls is None:
            raise BadPeerMessage(f"unknown message type {code!r}")
        arity = _ARITY.get(code)
        if arity is None:
            arity = _ARITY[code] = _arity(cls)
        lo, hi = arity
        fields = obj[1:]
        if not lo <= len(fields) <= hi:
            raise BadPeerMessage(f"{cls.__name__} with {len(fields)} fields")
        checks = self.checks
        for name, value in zip(cls.__slots__, fields):
            if name == "src":
                if value != peer_id:
                    raise BadPeerMessage(f"{cls.__name__} claims to be from node {value!r}, came from node {peer_id}")
                continue
            check = self.class_checks.get((cls.__name__, name)) or checks.get(name)
            if check is not None and not check(value):
                raise BadPeerMessage(f"{cls.__name__}.{name} = {_short(value)}")
        try:
            return cls(*fields)
        except Exception as exc:  # a shape the constructor cannot take
            raise BadPeerMessage(f"{cls.__name__}: {type(exc).__name__}: {exc}") from None


def _range_spec(r: Any, n: int) -> bool:
    return (type(r) in (list, tuple) and len(r) == n and type(r[0]) is bytes and (r[1] is None or type(r[1]) is bytes)
            and (r[2] is None or _int_in(r[2], 0, MAX_COUNTER)) and type(r[3]) is bool)


def _footprint_shape(v: Any) -> bool:
    """[reads, writes, read ranges, write ranges]: keys are bytes, ranges [start, end | None]."""
    if type(v) is not list or len(v) != 4 or not all(type(part) is list for part in v):
        return False
    keys_ok = all(type(k) is bytes for k in v[0]) and all(type(k) is bytes for k in v[1])
    return keys_ok and all(
        type(r) is list and len(r) == 2 and type(r[0]) is bytes and (r[1] is None or type(r[1]) is bytes)
        for r in v[2] + v[3]
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
