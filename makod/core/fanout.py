"""Whole-keyspace commands on a multi-shard cluster: run on every shard, merge.

The command table says how (``merge``): DBSIZE sums, KEYS concatenates,
FLUSHDB/FLUSHALL succeed if every shard did, FUNCTION's
subcommands answer with the first shard's reply, RANDOMKEY takes any shard's
key, and SCAN walks the shards one after another with the shard's index in
the low 8 bits of the cursor (the rest is that shard's own position), so a
cursor stays a 64-bit integer as clients expect. Each shard's part is a
local transaction there; the whole is not atomic across shards, as in
Redis Cluster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from makod.kv.requests import TxnRequest
from makod.kv import errors
from makod.kv.args import parse_cursor
from makod.kv.errors import CommandError
from makod.kv.replies import OK, ErrorReply

if TYPE_CHECKING:
    from makod.core.node import NodeCore

SHARD_BITS = 8


class Gather:
    def __init__(self, node: "NodeCore", token: Any, request: TxnRequest) -> None:
        self.node = node
        self.token = token
        self.argv = request.commands[0]
        self.db = request.db
        self.spec = node.lookup(self.argv)
        self.replies: dict[int, Any] = {}
        self.expected = 0
        self.scan_shard = 0

    def start(self) -> None:
        node = self.node
        if self.spec.merge == "scan":
            try:
                cursor = parse_cursor(self.argv[1])  # exactly what the handler accepts
            except CommandError:
                # The shard answers with the proper error. Set up before asking:
                # our own shard answers at once (set after, the reply was never
                # counted and the client waited forever).
                self.expected = 1
                self.scan_shard = -1
                self._ask(node.shard, self.argv)
                return
            self.scan_shard = cursor & ((1 << SHARD_BITS) - 1)
            if self.scan_shard >= node.num_shards:
                self._finish(ErrorReply(errors.INVALID_CURSOR))
                return
            argv = list(self.argv)
            argv[1] = str(cursor >> SHARD_BITS).encode()
            self.expected = 1
            self._ask(self.scan_shard, argv)
            return
        self.expected = node.num_shards
        for shard in range(node.num_shards):
            self._ask(shard, self.argv)

    def _ask(self, shard: int, argv: list[bytes]) -> None:
        node = self.node
        request = TxnRequest([argv], shard=shard, db=self.db)
        callback = lambda result, shard=shard: self._reply(shard, result)  # noqa: E731
        if shard == node.shard and node.replica.can_serve():
            node._run_here(callback, request, trap_remote=False)
            return
        leader = node.leader_of(shard)
        if leader is None or leader == node.id:
            self._reply(shard, ErrorReply(errors.CLUSTERDOWN_NO_LEADER.format(shard)))
            return
        node.forward(leader, request, callback, shard)

    def _reply(self, shard: int, result: Any) -> None:
        self.replies[shard] = result
        if len(self.replies) == self.expected:
            self._finish(self._merge())

    def _merge(self) -> Any:
        for reply in self.replies.values():
            if isinstance(reply, ErrorReply):
                return reply
        values = [self.replies[s] for s in sorted(self.replies)]
        merge = self.spec.merge
        if merge == "sum":
            return sum(values)
        if merge == "concat":
            return [item for value in values for item in value]
        if merge == "all_ok":
            return OK
        if merge == "first":  # every shard holds the same (FUNCTION's libraries)
            return values[0]
        if merge == "any":
            found = [v for v in values if v is not None]
            return found[self.node.rng.randrange(len(found))] if found else None
        if merge == "scan":
            if self.scan_shard < 0:
                return values[0]
            (next_pos, keys), = values
            pos = int(next_pos)
            if pos:
                cursor = (pos << SHARD_BITS) | self.scan_shard
            elif self.scan_shard + 1 < self.node.num_shards:
                cursor = self.scan_shard + 1  # position 0 of the next shard
            else:
                cursor = 0
            return [str(cursor).encode(), keys]
        raise AssertionError(f"unknown merge policy {merge!r} for {self.spec.name}")

    def _finish(self, result: Any) -> None:
        self.node.finish(self.token, result, self.node.replica.zero)
