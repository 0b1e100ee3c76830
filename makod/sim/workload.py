"""Simulated clients and the history they record.

Each client is closed-loop: it sends one operation to a random replica
(which may be down, partitioned or deposed), waits for the reply or gives up
after a timeout, and records when it invoked and when (if ever) it got an
answer. Keys come in families, each checked its own way (checker.py):

* lists (``k...``): ``APPEND k "<mark>,"``, ``GET k``, MULTI/EXEC of both,
  and WATCH-guarded MULTIs (WATCH, GET each key, then EXEC): every write
  leaves a unique mark, so the history is checked for strict serializability
  (elle.py);
* procedure lists (``pk...``): ``sim.append_read`` procedures that append,
  read and scan key ranges (which span shards) on native lists; checked with
  the lists;
* registers (``r...``): ``SET r <unique value>`` (some with a TTL), ``DEL``,
  ``GET``, and MULTI/EXEC of them across shards; checked key by key for
  linearizability (registers.py), deletions and expiry included;
* ``INCR counter``: exactly once under retries and failovers;
* queues (``q...``, Redis lists): ``RPUSH q <unique value>``, ``LPOP q`` and
  ``LMOVE qa qb LEFT RIGHT`` (a distributed transaction when the queues live on
  different shards): no value is lost, duplicated or invented;
* bags (``s...`` sets and ``z...`` sorted sets) hold the same kind of unique
  tokens: ``SADD``/``SPOP``, ``ZADD``/``ZPOPMIN``, and merges that move every
  token of one bag into another in one MULTI (``SUNIONSTORE d d s; DEL s``,
  ``ZUNIONSTORE d 2 d s; DEL s``: distributed when the bags live on different
  shards; half of one would duplicate or lose tokens). Tokens are checked
  with the queues' values: each seen once, none invented, none acknowledged lost;
* streams (``x...``): ``XADD x * t <unique value>`` (alone, or two streams in
  one MULTI) and a MULTI of ``XGROUP CREATE x g 0 MKSTREAM`` (BUSYGROUP once
  the group exists) and ``XREADGROUP GROUP g c COUNT 2 STREAMS x >``: every
  acknowledged entry is in its stream once under the ID XADD answered, and
  no entry is delivered by ``>`` twice (streams_check.py).

A seed may run in *flush mode*: registers only, with ``FLUSHDB`` among them
(it would erase the lists' history, which their check relies on).
Keys are chosen with a skew (a few hot keys take most operations), so
transactions conflict even when there are hundreds of keys.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable

import msgpack

from makod.kv.requests import TxnRequest, WatchRequest
from makod.kv.table import TABLE
from makod.sim import procs
from makod.kv.replies import NULL_ARRAY, ErrorReply


@dataclass
class Op:
    op_id: int
    client: int
    kind: str  # append | get | incr | txn | proc | watch | rset | rdel | rget | rtxn | flush
    key: bytes
    node: int
    invoke_ms: float
    complete_ms: float | None = None
    ok: bool | None = None  # True: acknowledged; False: error reply; None: no answer
    result: Any = None
    # For transactions: [("append", key, mark) | ("read", key, None) | ("scan", start, (end, limit))]
    # on lists, [("set", key, (value, ttl_ms)) | ("del", key, None) | ("get", key, None)] on registers.
    mops: list | None = None
    reads: dict = field(default_factory=dict)  # watch: key -> list read by its GET (before EXEC)
    reads_ms: float | None = None  # watch: when the last of those GETs answered

    @property
    def mark(self) -> int:
        """Marks are unique across the run: op_id * 10 + position in the transaction."""
        return self.op_id * 10


@dataclass
class Mix:
    """What clients do, as weights (normalised when drawn)."""

    append: float = 0.25
    get: float = 0.15
    incr: float = 0.05
    txn: float = 0.15
    proc: float = 0.1
    watch: float = 0.05
    rset: float = 0.1
    rdel: float = 0.04
    rget: float = 0.06
    rtxn: float = 0.05
    flush: float = 0.0
    qpush: float = 0.04
    qpop: float = 0.03
    qmove: float = 0.03
    sadd: float = 0.03
    spop: float = 0.02
    smerge: float = 0.01
    zadd: float = 0.03
    zpop: float = 0.02
    zmerge: float = 0.01
    xadd: float = 0.03
    xadd2: float = 0.01
    xread: float = 0.03


LIST_KINDS = ("append", "get", "txn", "proc", "watch")
CONNECTION_REFUSED = "ERR connection refused (simulated: the replica is down)"
REGISTER_KINDS = ("rset", "rdel", "rget", "rtxn", "flush")
# Kinds whose operations move unique tokens among queues and bags (checker._check_tokens).
PUSH_KINDS = ("qpush", "sadd", "zadd")
POP_KINDS = ("qpop", "spop", "zpop")
STREAM_KINDS = ("xadd", "xadd2", "xread")
QUEUE_KINDS = PUSH_KINDS + POP_KINDS + ("qmove", "smerge", "zmerge") + STREAM_KINDS


class Workload:
    def __init__(
        self,
        world: Any,
        clients: int = 4,
        keys: int = 4,
        timeout_ms: float = 2500.0,
        think_ms: float = 5.0,
        mix: Mix | None = None,
        register_keys: int = 8,
        expiring_share: float = 0.25,
        hot_share: float = 0.7,
    ) -> None:
        self.world = world
        self.rng = random.Random(world.rng.random())
        self.keys = [b"k%d" % i for i in range(keys)]
        self.proc_keys = [b"pk%03d" % i for i in range(keys)]
        self.register_keys = [b"r%d" % i for i in range(register_keys)]
        self.queue_keys = [b"q%d" % i for i in range(4)]
        self.set_keys = [b"s%d" % i for i in range(4)]
        self.zset_keys = [b"z%d" % i for i in range(4)]
        self.stream_keys = [b"x%d" % i for i in range(3)]
        self.expiring = set(self.register_keys[: int(len(self.register_keys) * expiring_share)])
        self.hot_share = hot_share
        self.timeout_ms = timeout_ms
        self.think_ms = think_ms
        self.mix = mix or Mix()
        kinds = [(k, w) for k, w in vars(self.mix).items() if w > 0]
        total = sum(w for _, w in kinds)
        self._cumulative: list[tuple[float, str]] = []
        acc = 0.0
        for kind, weight in kinds:
            acc += weight / total
            self._cumulative.append((acc, kind))
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

    def all_keys(self) -> list[bytes]:
        return (self.keys + self.proc_keys + self.register_keys + self.queue_keys + self.set_keys + self.zset_keys
                + self.stream_keys + [b"counter"])

    @property
    def idle(self) -> bool:
        return not self.outstanding

    # -- choosing ---------------------------------------------------------------------------
    def _pick(self, keys: list[bytes]) -> bytes:
        """Skewed: ``hot_share`` of picks go to the first tenth of the keys."""
        hot = max(1, len(keys) // 10)
        if self.rng.random() < self.hot_share:
            return keys[self.rng.randrange(hot)]
        return self.rng.choice(keys)

    def _kind(self) -> str:
        roll = self.rng.random()
        for acc, kind in self._cumulative:
            if roll < acc:
                return kind
        return self._cumulative[-1][1]

    # -- issuing ----------------------------------------------------------------------------
    def _issue(self, client: int) -> None:
        if not self.active:
            return
        world = self.world
        self.next_op += 1
        kind = self._kind()
        node_id = self.rng.choice(world.ids)
        op = Op(self.next_op, client, kind, b"", node_id, world.now)
        self.history.append(op)
        self.outstanding[client] = op
        done = {"flag": False}

        def finish(result: Any, answered: bool = True) -> None:
            if done["flag"]:
                return
            done["flag"] = True
            if answered:
                op.complete_ms = world.now
                op.ok = not isinstance(result, ErrorReply)
                op.result = result
            self.outstanding.pop(client, None)
            world.at(self.think_ms * self.rng.random(), lambda: self._issue(client))

        world.at(self.timeout_ms, lambda: finish(None, answered=False))
        if kind == "watch":
            self._watch(op, finish, done)
            return
        self._send(op, self._request(op), finish)

    def _send(self, op: Op, request: Any, callback: Callable[[Any], None]) -> None:
        node = self.world.nodes.get(op.node)
        if node is None:
            # Nobody listens on a crashed replica's port: the client knows at once.
            self.world.at(1.0, lambda: callback(ErrorReply(CONNECTION_REFUSED)))
            return
        if self.world.now < node.paused_until:
            return  # a stopped process: the connection hangs, no answer ever comes
        node.submit(request, callback)

    def _request(self, op: Op) -> Any:
        kind, rng = op.kind, self.rng
        if kind == "append":
            op.key = self._pick(self.keys)
            return TxnRequest([[b"APPEND", op.key, b"%d," % op.mark]])
        if kind == "get":
            op.key = self._pick(self.keys)
            request = TxnRequest([[b"GET", op.key]])
            request.specs = [TABLE.lookup(b"get")]  # resolved where it was sent, as a RESP session does (the fast read path)
            return request
        if kind == "incr":
            op.key = b"counter"
            return TxnRequest([[b"INCR", op.key]])
        if kind == "txn":
            op.mops = []
            argvs = []
            for i in range(rng.randint(1, 4)):
                k = self._pick(self.keys)
                if rng.random() < 0.5:
                    op.mops.append(("append", k, op.mark + i))
                    argvs.append([b"APPEND", k, b"%d," % (op.mark + i)])
                else:
                    op.mops.append(("read", k, None))
                    argvs.append([b"GET", k])
            return TxnRequest(argvs, multi=True)
        if kind == "proc":
            op.mops = []
            for i in range(rng.randint(1, 4)):
                roll = rng.random()
                if roll < 0.15:
                    a, b = sorted(rng.sample(range(len(self.proc_keys) + 1), 2))
                    start = self.proc_keys[a] if a < len(self.proc_keys) else b"pk~"
                    end = self.proc_keys[b] if b < len(self.proc_keys) else b"pk~"
                    op.mops.append(("scan", start, (end, rng.choice([None, 3]))))
                elif roll < 0.6:
                    op.mops.append(("append", self._pick(self.proc_keys), op.mark + i))
                else:
                    op.mops.append(("read", self._pick(self.proc_keys), None))
            wire = [[kind_, key, list(arg) if isinstance(arg, tuple) else arg] for kind_, key, arg in op.mops]
            args = msgpack.packb({"mops": wire}, use_bin_type=True)
            return TxnRequest([[b"MAKO", b"CALL", procs.NAME.encode(), args]])
        if kind in ("rset", "rdel", "rget"):
            op.key = self._pick(self.register_keys)
            mop = self._register_mop(kind[1:], op.key, op.mark)
            op.mops = [mop]
            return TxnRequest([self._register_argv(mop)])
        if kind == "rtxn":
            op.mops = []
            for i in range(rng.randint(2, 4)):
                choice = rng.choice(("set", "set", "del", "get"))
                op.mops.append(self._register_mop(choice, self._pick(self.register_keys), op.mark + i))
            return TxnRequest([self._register_argv(m) for m in op.mops], multi=True)
        if kind == "flush":
            return TxnRequest([[b"FLUSHDB"]])
        if kind == "qpush":
            op.key = self._pick(self.queue_keys)
            return TxnRequest([[b"RPUSH", op.key, queue_value(op)]])
        if kind == "qpop":
            op.key = self._pick(self.queue_keys)
            return TxnRequest([[b"LPOP", op.key]])
        if kind == "qmove":
            src, dst = rng.sample(self.queue_keys, 2)
            op.key = src
            return TxnRequest([[b"LMOVE", src, dst, b"LEFT", b"RIGHT"]])
        return self._bag_request(op)

    def _bag_request(self, op: Op) -> Any:
        kind = op.kind
        if kind in ("sadd", "spop"):
            op.key = self._pick(self.set_keys)
            if kind == "sadd":
                return TxnRequest([[b"SADD", op.key, queue_value(op)]])
            return TxnRequest([[b"SPOP", op.key]])
        if kind in ("zadd", "zpop"):
            op.key = self._pick(self.zset_keys)
            if kind == "zadd":
                return TxnRequest([[b"ZADD", op.key, b"%d" % self.rng.randrange(100), queue_value(op)]])
            return TxnRequest([[b"ZPOPMIN", op.key]])
        if kind in STREAM_KINDS:
            return self._stream_request(op)
        if kind == "smerge":
            dst, src = self.rng.sample(self.set_keys, 2)
            op.key = src
            return TxnRequest([[b"SUNIONSTORE", dst, dst, src], [b"DEL", src]], multi=True)
        if kind == "zmerge":
            dst, src = self.rng.sample(self.zset_keys, 2)
            op.key = src
            return TxnRequest([[b"ZUNIONSTORE", dst, b"2", dst, src], [b"DEL", src]], multi=True)
        raise AssertionError(kind)

    def _stream_request(self, op: Op) -> Any:
        kind = op.kind
        op.key = self._pick(self.stream_keys)
        if kind == "xadd":
            return TxnRequest([[b"XADD", op.key, b"*", b"t", queue_value(op)]])
        if kind == "xadd2":
            other = self.rng.choice([k for k in self.stream_keys if k != op.key])
            op.mops = [op.key, other]
            return TxnRequest([[b"XADD", op.key, b"*", b"t", queue_value(op)],
                               [b"XADD", other, b"*", b"t", queue_value(op) + b"b"]], multi=True)
        return TxnRequest([[b"XGROUP", b"CREATE", op.key, b"g", b"0", b"MKSTREAM"],
                           [b"XREADGROUP", b"GROUP", b"g", b"c%d" % op.client, b"COUNT", b"2",
                            b"STREAMS", op.key, b">"]], multi=True)

    def _register_mop(self, kind: str, key: bytes, mark: int) -> tuple:
        if kind == "set":
            ttl = self.rng.randint(20, 300) if key in self.expiring else None
            return ("set", key, (b"v%d" % mark, ttl))
        return (kind, key, None)

    @staticmethod
    def _register_argv(mop: tuple) -> list[bytes]:
        kind, key, arg = mop
        if kind == "set":
            value, ttl = arg
            return [b"SET", key, value] + ([b"PX", b"%d" % ttl] if ttl else [])
        return [b"DEL" if kind == "del" else b"GET", key]

    # -- WATCH k1 k2; GET k1; GET k2; MULTI; APPEND ...; EXEC --------------------------------
    def _watch(self, op: Op, finish: Callable, done: dict) -> None:
        keys = sorted({self._pick(self.keys) for _ in range(self.rng.randint(1, 2))})
        op.mops = [("read", k, None) for k in keys]
        op.mops += [("append", k, op.mark + i) for i, k in enumerate(keys) if self.rng.random() < 0.8]
        if not any(m[0] == "append" for m in op.mops):
            op.mops.append(("append", keys[0], op.mark + 9))
        state: dict[str, Any] = {}

        def watched(result: Any) -> None:
            if done["flag"]:
                return
            if isinstance(result, ErrorReply):
                finish(result)
                return
            state["versions"] = list(zip(keys, result))
            read_next(0)

        def read_next(i: int) -> None:
            if i == len(keys):
                argvs = [[b"APPEND", k, b"%d," % m] for kind, k, m in op.mops if kind == "append"]
                self._send(op, TxnRequest(argvs, multi=True, watches=state["versions"]), executed)
                return
            got = {}

            def read(result: Any) -> None:
                if done["flag"] or got:
                    return
                got["r"] = result
                if isinstance(result, ErrorReply):
                    finish(result)
                    return
                op.reads[keys[i]] = result
                op.reads_ms = self.world.now
                read_next(i + 1)

            self._send(op, TxnRequest([[b"GET", keys[i]]]), read)

        def executed(result: Any) -> None:
            finish(result)

        self._send(op, WatchRequest(keys), watched)


def queue_value(op: Op) -> bytes:
    return b"m%d" % op.mark


def watch_failed(op: Op) -> bool:
    """EXEC answered a null array: a watched key changed, nothing ran."""
    return op.ok is True and op.result is NULL_ARRAY
