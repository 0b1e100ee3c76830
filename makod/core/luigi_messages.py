"""Messages of Luigi (timestamp-ordered transactions, luigi.py) among shard leaders.

``txn`` ids are the coordinator's, as in txn_messages.py. A dispatch carries
``sent_us``, the coordinator's wall clock when it sent it (microseconds); the
leader answers ``owd_us``, its own clock on arrival minus that: the delay
from the coordinator to it plus their clocks' offset, which is exactly what
the coordinator must add to its clock to stamp a timestamp that lands on
time at that leader (owd.py). Started transactions finish with Mako's
TxnInstall or TxnAbort.
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

    __slots__ = ("shard", "src", "txn", "ok", "t", "owd_us", "reason")
    TYPE = 54

    def __init__(self, shard, src, txn, ok, t, owd_us, reason) -> None:
        self.shard, self.src, self.txn, self.ok, self.t = shard, src, tuple(txn), ok, t
        self.owd_us, self.reason = owd_us, reason


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

    __slots__ = ("shard", "src", "txn", "ok", "epoch", "clock", "items", "reason")
    TYPE = 56

    def __init__(self, shard, src, txn, ok, epoch, clock, items, reason) -> None:
        self.shard, self.src, self.txn, self.ok = shard, src, tuple(txn), ok
        self.epoch, self.clock, self.items, self.reason = epoch, clock, items, reason
