"""Messages that carry a client's request to the leader that must run it."""

from __future__ import annotations

from makod.core.messages import Message, message
from makod.kv.requests import TxnRequest, WatchRequest, request_from_wire  # noqa: F401


@message
class ForwardRequest(Message):
    """A node hands a client's request to the leader of the shard that must run it.

    ``ballot`` is the ballot under which the sender believes ``dst`` leads:
    the leader runs the request only under that very ballot, so a late or
    duplicated copy is never run by a later leadership (or a restarted
    process) that cannot remember having run it.
    """

    __slots__ = ("shard", "src", "rid", "request", "ballot")
    TYPE = 20

    def __init__(self, shard: int, src: int, rid: int, request: list, ballot: int) -> None:
        self.shard, self.src, self.rid, self.request, self.ballot = shard, src, rid, request, ballot


@message
class ForwardReply(Message):
    """The leader's answer; ``result`` is packed with entries.pack_value."""

    __slots__ = ("shard", "src", "rid", "result", "moved")
    TYPE = 21

    def __init__(self, shard: int, src: int, rid: int, result: bytes, moved: list | None = None) -> None:
        # moved: with an empty result (nothing ran), [lo, hi, shard] for the
        # slots the sender handed to other shards, so the origin routes better.
        self.shard, self.src, self.rid, self.result, self.moved = shard, src, rid, result, moved
