"""Messages of Luigi (timestamp-ordered transactions, luigi.py) among shard leaders.

``txn`` ids are the coordinator's, as in txn_messages.py. ``sent_us`` is the
sender's wall clock when it sent the message (microseconds): receivers
estimate one-way delays from it (owd.py). Started transactions finish with
Mako's TxnInstall or TxnAbort.
"""

from __future__ import annotations

from makod.core.messages import Message, message


@message
class LuigiDispatch(Message):
    """Queue a transaction at timestamp ``t``; ``footprint`` is its part at this
    shard (Footprint.to_wire: reads, writes, read ranges, write ranges)."""

    __slots__ = ("shard", "src", "txn", "t", "footprint", "sent_us")
    TYPE = 53

    def __init__(self, shard, src, txn, t, footprint, sent_us) -> None:
        self.shard, self.src, self.txn, self.t = shard, src, tuple(txn), t
        self.footprint, self.sent_us = footprint, sent_us


@message
class LuigiProposed(Message):
    """The timestamp this leader proposes (``t``, bumped or not), or ok=False."""

    __slots__ = ("shard", "src", "txn", "ok", "t", "sent_us", "reason")
    TYPE = 54

    def __init__(self, shard, src, txn, ok, t, sent_us, reason) -> None:
        self.shard, self.src, self.txn, self.ok, self.t = shard, src, tuple(txn), ok, t
        self.sent_us, self.reason = sent_us, reason


@message
class LuigiAgreed(Message):
    """The agreed timestamp: the max of every involved leader's proposal."""

    __slots__ = ("shard", "src", "txn", "t")
    TYPE = 55

    def __init__(self, shard, src, txn, t) -> None:
        self.shard, self.src, self.txn, self.t = shard, src, tuple(txn), t


@message
class LuigiReady(Message):
    """The transaction started here at its agreed timestamp: this shard's clock
    for it (locks on its writes held, as a Mako prepare) and the records of
    its footprint's keys: items are [key, record | None, version, deps | None]."""

    __slots__ = ("shard", "src", "txn", "ok", "epoch", "clock", "items", "sent_us", "reason")
    TYPE = 56

    def __init__(self, shard, src, txn, ok, epoch, clock, items, sent_us, reason) -> None:
        self.shard, self.src, self.txn, self.ok = shard, src, tuple(txn), ok
        self.epoch, self.clock, self.items, self.sent_us, self.reason = epoch, clock, items, sent_us, reason
