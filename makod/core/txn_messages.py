"""Messages of Mako's cross-shard certification, among shard leaders.

``txn`` ids are (coordinator node, coordinator epoch, sequence) triples:
unique across restarts (the sequence starts at a random incarnation) and
telling any leader which shard and epoch coordinated them. Records travel
encoded (storage.base.encode_record) with their dependency vectors.
"""

from __future__ import annotations

from makod.core.messages import Message, message


def _tid(txn) -> tuple:
    return tuple(txn)


@message
class TxnRead(Message):
    """Read keys (and key ranges) at their owning leader, without locking.

    ``round`` numbers the coordinator's rounds of reads for one transaction;
    the reply echoes it, so a late or duplicated reply to an earlier round is
    never taken for the answer to this one.
    """

    __slots__ = ("shard", "src", "txn", "keys", "ranges", "round")
    TYPE = 40

    def __init__(self, shard, src, txn, keys, ranges, round=0) -> None:
        self.shard, self.src, self.txn = shard, src, _tid(txn)
        self.keys = keys
        self.ranges = [tuple(r) for r in ranges]
        self.round = round


@message
class TxnReadReply(Message):
    """items: [key, record bytes | None, version, deps | None]; ranges: one list of items per range.

    ``deps``: what the range reads depend on besides the items found (every
    transaction not yet final on the shard: what a range missed matters too).
    """

    __slots__ = ("shard", "src", "txn", "ok", "epoch", "items", "ranges", "reason", "deps", "round")
    TYPE = 41

    def __init__(self, shard, src, txn, ok, epoch, items, ranges, reason, deps=None, round=0) -> None:
        self.shard, self.src, self.txn, self.ok, self.epoch = shard, src, _tid(txn), ok, epoch
        self.items, self.ranges, self.reason = items, ranges, reason
        self.deps = tuple(deps) if deps else None
        self.round = round


@message
class TxnPrepare(Message):
    """Lock ``keys`` (a held lock fails at once) and hand out this shard's next clock."""

    __slots__ = ("shard", "src", "txn", "keys")
    TYPE = 42

    def __init__(self, shard, src, txn, keys) -> None:
        self.shard, self.src, self.txn, self.keys = shard, src, _tid(txn), keys


@message
class TxnPrepared(Message):
    __slots__ = ("shard", "src", "txn", "ok", "clock", "epoch", "reason")
    TYPE = 43

    def __init__(self, shard, src, txn, ok, clock, epoch, reason) -> None:
        self.shard, self.src, self.txn, self.ok = shard, src, _tid(txn), ok
        self.clock, self.epoch, self.reason = clock, epoch, reason


@message
class TxnValidate(Message):
    """reads: [key, version]; ranges: [start, end, limit, reverse, [[key, version], ...]]."""

    __slots__ = ("shard", "src", "txn", "reads", "ranges")
    TYPE = 44

    def __init__(self, shard, src, txn, reads, ranges) -> None:
        self.shard, self.src, self.txn, self.reads, self.ranges = shard, src, _tid(txn), reads, ranges


@message
class TxnValidated(Message):
    __slots__ = ("shard", "src", "txn", "ok", "reason")
    TYPE = 45

    def __init__(self, shard, src, txn, ok, reason) -> None:
        self.shard, self.src, self.txn, self.ok, self.reason = shard, src, _tid(txn), ok, reason


@message
class TxnInstall(Message):
    """Apply ``ops`` at the prepared clock, with version vector ``deps``; release the locks."""

    __slots__ = ("shard", "src", "txn", "epoch", "deps", "ops")
    TYPE = 46

    def __init__(self, shard, src, txn, epoch, deps, ops) -> None:
        self.shard, self.src, self.txn, self.epoch = shard, src, _tid(txn), epoch
        self.deps = tuple(deps)
        self.ops = [tuple(op) for op in ops]


@message
class TxnInstalled(Message):
    __slots__ = ("shard", "src", "txn", "ok", "reason")
    TYPE = 47

    def __init__(self, shard, src, txn, ok, reason) -> None:
        self.shard, self.src, self.txn, self.ok, self.reason = shard, src, _tid(txn), ok, reason


@message
class TxnAbort(Message):
    __slots__ = ("shard", "src", "txn")
    TYPE = 48

    def __init__(self, shard, src, txn) -> None:
        self.shard, self.src, self.txn = shard, src, _tid(txn)


@message
class TxnAborted(Message):
    __slots__ = ("shard", "src", "txn")
    TYPE = 49

    def __init__(self, shard, src, txn) -> None:
        self.shard, self.src, self.txn = shard, src, _tid(txn)


@message
class TxnQuery(Message):
    """A participant holding a prepared transaction for too long asks its coordinator's shard."""

    __slots__ = ("shard", "src", "txn", "participant_shard")
    TYPE = 50

    def __init__(self, shard, src, txn, participant_shard) -> None:
        self.shard, self.src, self.txn, self.participant_shard = shard, src, _tid(txn), participant_shard


@message
class TxnDecision(Message):
    """outcome: "commit" (deps and this participant's ops follow), "abort", or "pending"."""

    __slots__ = ("shard", "src", "txn", "outcome", "deps", "ops")
    TYPE = 51

    def __init__(self, shard, src, txn, outcome, deps, ops) -> None:
        self.shard, self.src, self.txn, self.outcome = shard, src, _tid(txn), outcome
        self.deps = tuple(deps) if deps is not None else None
        self.ops = [tuple(op) for op in ops] if ops is not None else None


@message
class Watermark(Message):
    """A shard leader's gossip: who leads, its epoch, its watermark, its ended epochs."""

    __slots__ = ("shard", "src", "epoch", "w", "closed", "closed_below", "serving", "ballot")
    TYPE = 52

    def __init__(self, shard, src, epoch, w, closed, closed_below, serving, ballot) -> None:
        self.shard, self.src, self.epoch, self.w = shard, src, epoch, w
        self.closed = {int(k): v for k, v in closed.items()}
        self.closed_below = closed_below
        self.serving = serving
        self.ballot = ballot  # the sender leads under this ballot
