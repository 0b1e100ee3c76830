"""Simulated clients and the history they record.

Each client is closed-loop: it sends one request to a random replica (which
may be down, partitioned or deposed), waits for the reply or gives up after a
timeout, and records when it invoked and when (if ever) it got an answer.

Operations, chosen so the history can be checked exactly:
* ``APPEND k "<op id>,"``: every write leaves a unique mark in the value, so
  the final value tells which writes happened, in which order, and whether
  any happened twice;
* ``GET k``: a read returns the whole list written so far;
* ``INCR counter``: exactly-once under retries and failovers;
* MULTI/EXEC of APPENDs and GETs, and the same as a stored procedure
  (``sim.append_read`` on keys of their own holding native lists), whose
  keys may span shards.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import msgpack

from makod.core.requests import TxnRequest
from makod.sim import procs
from resp.replies import ErrorReply


@dataclass
class Op:
    op_id: int
    client: int
    kind: str  # append | get | incr | txn | proc
    key: bytes
    node: int
    invoke_ms: float
    complete_ms: float | None = None
    ok: bool | None = None  # True: acknowledged; False: error reply; None: no answer
    result: Any = None
    mops: list | None = None  # for "txn", "proc": [("append", key, mark) | ("read", key, None)]

    @property
    def mark(self) -> int:
        """Marks are unique across the run: op_id * 10 + position in the transaction."""
        return self.op_id * 10


class Workload:
    def __init__(
        self,
        world: Any,
        clients: int = 4,
        keys: int = 4,
        timeout_ms: float = 2500.0,
        think_ms: float = 5.0,
        read_ratio: float = 0.3,
        incr_ratio: float = 0.1,
        txn_ratio: float = 0.0,
        proc_ratio: float = 0.0,
    ) -> None:
        self.world = world
        self.rng = random.Random(world.rng.random())
        self.keys = [b"k%d" % i for i in range(keys)]
        self.proc_keys = [b"pk%d" % i for i in range(keys)]
        self.timeout_ms = timeout_ms
        self.think_ms = think_ms
        self.read_ratio = read_ratio
        self.incr_ratio = incr_ratio
        self.txn_ratio = txn_ratio
        self.proc_ratio = proc_ratio
        self.history: list[Op] = []
        self.next_op = 0
        self.active = True
        self.clients = clients
        self.outstanding: dict[int, Op] = {}

    def start(self) -> None:
        for c in range(self.clients):
            self.world.at(self.rng.random() * 10, lambda c=c: self._issue(c))

    def stop(self) -> None:
        self.active = False

    @property
    def idle(self) -> bool:
        return not self.outstanding

    def _issue(self, client: int) -> None:
        if not self.active:
            return
        world = self.world
        self.next_op += 1
        roll = self.rng.random()
        if roll < self.proc_ratio:
            kind, key = "proc", b""
        elif roll < self.proc_ratio + self.txn_ratio:
            kind, key = "txn", b""
        elif roll < self.proc_ratio + self.txn_ratio + self.incr_ratio:
            kind, key = "incr", b"counter"
        elif roll < self.proc_ratio + self.txn_ratio + self.incr_ratio + self.read_ratio:
            kind, key = "get", self.rng.choice(self.keys)
        else:
            kind, key = "append", self.rng.choice(self.keys)
        node_id = self.rng.choice(world.ids)
        op = Op(self.next_op, client, kind, key, node_id, world.now)
        self.history.append(op)
        self.outstanding[client] = op
        if kind == "append":
            request = TxnRequest([[b"APPEND", key, b"%d," % op.mark]])
        elif kind == "get":
            request = TxnRequest([[b"GET", key]])
        elif kind == "incr":
            request = TxnRequest([[b"INCR", key]])
        elif kind == "proc":
            op.mops = []
            for i in range(self.rng.randint(1, 4)):
                k = self.rng.choice(self.proc_keys)
                if self.rng.random() < 0.5:
                    op.mops.append(("append", k, op.mark + i))
                else:
                    op.mops.append(("read", k, None))
            args = msgpack.packb({"mops": [list(m) for m in op.mops]}, use_bin_type=True)
            request = TxnRequest([[b"MAKO", b"CALL", procs.NAME.encode(), args]])
        else:
            op.mops = []
            argvs = []
            for i in range(self.rng.randint(1, 4)):
                k = self.rng.choice(self.keys)
                if self.rng.random() < 0.5:
                    mark = op.mark + i
                    op.mops.append(("append", k, mark))
                    argvs.append([b"APPEND", k, b"%d," % mark])
                else:
                    op.mops.append(("read", k, None))
                    argvs.append([b"GET", k])
            request = TxnRequest(argvs, multi=True)
        done = {"flag": False}

        def reply(result: Any) -> None:
            if done["flag"]:
                return
            done["flag"] = True
            op.complete_ms = world.now
            op.ok = not isinstance(result, ErrorReply)
            op.result = result
            self.outstanding.pop(client, None)
            world.at(self.think_ms * self.rng.random(), lambda: self._issue(client))

        def give_up() -> None:
            if done["flag"]:
                return
            done["flag"] = True
            self.outstanding.pop(client, None)
            world.at(self.think_ms * self.rng.random(), lambda: self._issue(client))

        node = world.nodes.get(node_id)
        world.at(self.timeout_ms, give_up)
        if node is None or world.now < node.paused_until:
            return  # the connection fails: no answer ever comes
        node.submit(request, reply)
