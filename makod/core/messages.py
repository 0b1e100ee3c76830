"""Messages between replicas, as plain slotted classes.

Each class has a unique ``TYPE`` code; on the wire a message is the tuple
``(TYPE, *fields)`` (see makod/net/codec.py), so field order is the wire
format. Ballots are ints: ``round * 256 + replica_id``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class Message:
    __slots__ = ()
    TYPE: ClassVar[int] = -1

    def fields(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.fields() == self.fields()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        parts = []
        for name in self.__slots__:
            value = getattr(self, name)
            if isinstance(value, (list, tuple)) and len(value) > 4:
                value = f"[{len(value)} items]"
            elif isinstance(value, bytes) and len(value) > 16:
                value = f"<{len(value)} bytes>"
            parts.append(f"{name}={value}")
        return f"{type(self).__name__}({', '.join(parts)})"


REGISTRY: dict[int, type[Message]] = {}


def message(cls: type[Message]) -> type[Message]:
    assert cls.TYPE not in REGISTRY, f"duplicate message type {cls.TYPE}"
    REGISTRY[cls.TYPE] = cls
    return cls


# -- Multi-Paxos -------------------------------------------------------------------
@message
class Prepare(Message):
    """Phase 1a: candidate asks for promises for all slots >= from_slot."""

    __slots__ = ("shard", "src", "ballot", "from_slot", "transfer")
    TYPE = 1

    def __init__(self, shard: int, src: int, ballot: int, from_slot: int, transfer: bool) -> None:
        self.shard, self.src, self.ballot, self.from_slot, self.transfer = (
            shard,
            src,
            ballot,
            from_slot,
            transfer,
        )


@message
class Promise(Message):
    """Phase 1b. ok=False carries the reason; entries are (slot, ballot, value)."""

    __slots__ = ("shard", "src", "ballot", "ok", "promised", "chosen_upto", "first_slot", "entries", "reason")
    TYPE = 2

    def __init__(
        self,
        shard: int,
        src: int,
        ballot: int,
        ok: bool,
        promised: int,
        chosen_upto: int,
        first_slot: int,
        entries: list,
        reason: str,
    ) -> None:
        self.shard, self.src, self.ballot, self.ok = shard, src, ballot, ok
        self.promised, self.chosen_upto, self.first_slot = promised, chosen_upto, first_slot
        self.entries = [tuple(e) for e in entries]
        self.reason = reason


@message
class Accept(Message):
    """Phase 2a for the contiguous slots first_slot.. (values may be empty: a heartbeat).

    ``commit`` tells the follower which prefix is chosen; ``seq`` is echoed
    back so the leader can date its lease.
    """

    __slots__ = ("shard", "src", "ballot", "first_slot", "values", "commit", "seq")
    TYPE = 3

    def __init__(
        self, shard: int, src: int, ballot: int, first_slot: int, values: list, commit: int, seq: int
    ) -> None:
        self.shard, self.src, self.ballot, self.first_slot = shard, src, ballot, first_slot
        self.values, self.commit, self.seq = values, commit, seq


@message
class Accepted(Message):
    """Phase 2b: ``match`` is the follower's highest slot m such that every slot
    up to m is chosen or accepted in this ballot. ok=False: ballot rejected
    (``promised`` says why)."""

    __slots__ = ("shard", "src", "ballot", "ok", "match", "promised", "seq", "first_slot")
    TYPE = 4

    def __init__(
        self, shard: int, src: int, ballot: int, ok: bool, match: int, promised: int, seq: int, first_slot: int
    ) -> None:
        self.shard, self.src, self.ballot, self.ok = shard, src, ballot, ok
        self.match, self.promised, self.seq, self.first_slot = match, promised, seq, first_slot


@message
class TimeoutNow(Message):
    """Leadership transfer: the leader tells its chosen successor to campaign now."""

    __slots__ = ("shard", "src", "ballot")
    TYPE = 5

    def __init__(self, shard: int, src: int, ballot: int) -> None:
        self.shard, self.src, self.ballot = shard, src, ballot


def ballot_round(ballot: int) -> int:
    return ballot >> 8


def ballot_node(ballot: int) -> int:
    return ballot & 0xFF


def make_ballot(round_: int, node: int) -> int:
    assert 0 <= node < 256
    return (round_ << 8) | node


def from_wire(fields: list[Any]) -> Message:
    cls = REGISTRY[fields[0]]
    return cls(*fields[1:])


def to_wire(msg: Message) -> tuple:
    return (msg.TYPE, *msg.fields())


@message
class SnapshotChunk(Message):
    """Part of a leader's checkpointed state, streamed to a replica its log no longer covers.

    ``items`` are (key, encoded record) pairs; the first chunk's ``meta``
    carries the shard's epochs and coordinator records (storage.base,
    encode_snapshot_meta). The receiver installs the whole snapshot once the
    ``last`` chunk of one (src, applied_slot) arrives.
    """

    __slots__ = ("shard", "src", "applied_slot", "clock", "index", "last", "items", "meta")
    TYPE = 6

    def __init__(
        self, shard: int, src: int, applied_slot: int, clock: int, index: int, last: bool, items: list,
        meta: bytes | None = None,
    ) -> None:
        self.shard, self.src, self.applied_slot, self.clock = shard, src, applied_slot, clock
        self.index, self.last = index, last
        self.items = [tuple(item) for item in items]
        self.meta = meta
