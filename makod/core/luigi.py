"""Luigi: transactions ordered by timestamp among shard leaders, after Tiga
(SOSP'25), beside Mako (``protocol: luigi``).

A cross-shard transaction, coordinated by the leader of the receiving node's
shard (LuigiCoordinator):

1. FOOTPRINT: every key it may read or write, per shard, from the command
   table (or a procedure's declared footprint, or WATCHed keys: reads);
   anything that cannot say its keys up front is refused.
2. DISPATCH at ``t = now + max one-way delay to the involved leaders +
   headroom`` to every involved leader, and to our own (which logs the
   coordinator record, as in Mako). Each queues it (luigi_seq.Sequencer),
   bumping ``t`` above any conflicting transaction already started there,
   and answers its proposal.
3. AGREE: the agreed timestamp is the max of the proposals; every leader
   repositions the transaction there.
4. START: each leader, once its clock passes the agreed timestamp and
   nothing conflicting is unfinished ahead of it, starts it: takes its
   clock and locks its writes (a Mako prepare, which cannot fail: nothing
   conflicting runs), and sends the records of its footprint's keys.
5. EXECUTE here on copies, as Mako's coordinator does (ranges and keys
   inside the footprint that were not sent are read on demand; nothing
   conflicting can change them meanwhile); INSTALL with Mako's TxnInstall
   at the version vector of the clocks and the read dependencies. Each
   leader lets conflicting successors start only once its part is
   installed (or released), so a transaction leaves every queue only after
   every involved leader executed it at the agreed timestamp.

Replication, the reply's durability (the vector watermark), epochs and
rollback are Mako's, unchanged. Nothing is rolled back for ordering: the
only aborts are a leader change or a timeout, retried with a new id.

Single-shard transactions pass the same order at their leader
(luigi_leader.LuigiLeader.admit): with nothing conflicting unfinished they run at once
at ``t = the leader's clock``; otherwise they wait their turn.

Leaders may sit in different datacenters: then a transaction costs two
wide-area round trips (dispatch and proposals, start and install), not
Tiga's one, since commands here may read what other shards hold; with the
leaders together (Mako's layout, the default) all of it is local.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from makod.core.coordinator import READ, Coordinator, DistTxn
from makod.core.luigi_messages import LuigiAgreed, LuigiDispatch, LuigiProposed, LuigiReady
from makod.core.luigi_seq import WHOLE, Footprint
from makod.core.procedures import procedure_footprint
from makod.core.txn_messages import TxnAbort, TxnReadReply
from makod.kv import dbs, errors
from makod.kv.requests import WatchRequest

if TYPE_CHECKING:
    from makod.core.node import NodeCore

PROPOSE, START = 10, 11


class FootprintError(Exception):
    pass


def request_footprints(node: "NodeCore", request: Any) -> dict[int, Footprint]:
    """Every key and range ``request`` may touch, per shard (internal keys).

    Writes are what write commands name; a procedure's footprint is all
    writes unless it is read-only (footprints do not tell reads from
    writes). Raises FootprintError when the keys cannot be known up front.
    """
    parts: dict[int, tuple[set, set, list, list]] = {}
    shard_of = node.slots.shard_of

    def part(shard: int) -> tuple[set, set, list, list]:
        found = parts.get(shard)
        if found is None:
            found = parts[shard] = (set(), set(), [], [])
        return found

    def add_range(start: bytes, end: bytes | None, write: bool, only: int | None = None) -> None:
        shards = [only] if only is not None else node.slots.range_shards(start, end)
        for shard in shards:
            part(shard)[3 if write else 2].append((start, end))

    if type(request) is WatchRequest:
        for key in request.keys:
            ik = dbs.encode(request.db, key)
            part(shard_of(ik))[0].add(ik)
    else:
        for i, argv in enumerate(request.commands):
            spec = node.lookup(argv)
            db = request.db_of(i)
            if spec.scope == "keyspace":
                add_range(*WHOLE, spec.is_write, request.shard)
                continue
            if "movablekeys" in spec.flags:
                if spec.reads_data_keys is not None and spec.reads_data_keys(argv) and not spec.keys_declared:
                    raise FootprintError(f"{spec.name.upper()} may touch keys it does not name up front (SORT BY/GET patterns, scripts)")
                if spec.key_finder is None:
                    try:
                        read_keys, read_ranges, write_keys, write_ranges = procedure_footprint(argv)
                    except ValueError as exc:
                        raise FootprintError(str(exc)) from None
                    for which, keys in ((0, read_keys), (1, write_keys)):
                        for key in keys:
                            ik = dbs.encode(0, key)
                            part(shard_of(ik))[which].add(ik)
                    for write, ranges in ((False, read_ranges), (True, write_ranges)):
                        for start, end in ranges:
                            add_range(start, end, write)
                    continue
            which = 1 if spec.is_write or (spec.keys_declared and "readonly" not in spec.flags) else 0
            for key in spec.keys(argv):
                ik = dbs.encode(db, key)
                part(shard_of(ik))[which].add(ik)
        for db, key, _version in request.watch_items():
            ik = dbs.encode(db, key)
            part(shard_of(ik))[0].add(ik)
    return {shard: Footprint(r, w, rr, wr) for shard, (r, w, rr, wr) in parts.items()}


class LuigiTxn(DistTxn):
    __slots__ = ("shards", "fps", "proposals", "t", "kept", "expired")

    def __init__(self, txn_id: tuple, token: Any, request: Any) -> None:
        super().__init__(txn_id, token, request)
        self.shards: list[int] = []
        self.fps: dict[int, Footprint] = {}
        self.proposals: dict[int, int] = {}
        self.t = 0
        self.kept: set[int] = set()  # shards whose start is finished by an Install
        self.expired: set[bytes] = set()  # keys the run deleted only because they expired


class LuigiCoordinator(Coordinator):
    """Mako's coordinator with certification replaced by timestamp order."""

    # Its start locks cannot fail, and its order leaves nothing to hold hot
    # keys against (coord_reserve.py).
    reserves_on_retry = False

    def __init__(self, node: "NodeCore") -> None:
        super().__init__(node)
        # (txn, shard) started there and let go without an Install: what a
        # participant that missed the TxnAbort learns when it asks (decision).
        self.released: dict[tuple, bool] = {}

    def start(self, token: Any, request: Any) -> None:
        node = self.node
        self.seq += 1
        txn = LuigiTxn((node.id, node.replica.epoch, self.seq), token, request)
        self.active[txn.id] = txn
        self._begin(txn)

    def _begin(self, txn: LuigiTxn) -> None:  # type: ignore[override]
        node = self.node
        txn.attempt += 1
        txn.fetched = {}
        txn.ranges = {}
        txn.clocks = {}
        txn.epochs = {}
        txn.ops_by_shard = {}
        txn.range_deps = node.replica.zero
        txn.read_deps = node.replica.zero
        txn.proposals = {}
        txn.kept = set()
        txn.need_keys = set()
        txn.need_ranges = set()
        try:
            fps = request_footprints(node, txn.request)
        except FootprintError as exc:
            self.active.pop(txn.id, None)
            node.deliver_error(txn.token, errors.LUIGI_NO_FOOTPRINT.format(exc))
            return
        fps.setdefault(node.shard, Footprint())  # our shard logs the coordinator record
        txn.fps = fps
        txn.shards = sorted(fps)
        leaders = {}
        for shard in txn.shards:
            leader = node.leader_of(shard)
            if leader is None:
                self._abort(txn, retry=True)
                return
            leaders[shard] = leader
        luigi = node.luigi
        now_us = luigi.wall_us()
        remote = [luigi.owd.estimate_us(leader) for shard, leader in leaders.items() if shard != node.shard]
        txn.t = now_us + (max(remote) + node.cfg.luigi_headroom_us if remote else 0)
        self._enter(txn, PROPOSE)
        txn.pending = set(txn.shards)
        for shard in txn.shards:
            luigi.send(leaders[shard], LuigiDispatch(shard, node.id, txn.id, txn.t, fps[shard].to_wire(), now_us))

    # -- replies ---------------------------------------------------------------------------
    def handle(self, msg: Any) -> None:
        t = type(msg)
        if t is LuigiProposed:
            self._on_proposed(msg)
        elif t is LuigiReady:
            self._on_ready(msg)
        elif t is TxnReadReply:
            super().handle(msg)

    def _on_proposed(self, msg: LuigiProposed) -> None:
        node = self.node
        node.luigi.owd.observe(msg.src, msg.owd_us)
        txn = self.active.get(msg.txn)
        if txn is None or txn.phase != PROPOSE or msg.shard not in txn.pending:
            return
        if not msg.ok:
            self._abort(txn, retry=True)
            return
        txn.pending.discard(msg.shard)
        txn.proposals[msg.shard] = msg.t
        if txn.pending:
            return
        txn.t = max(txn.proposals.values())
        self._enter(txn, START)
        txn.pending = set(txn.shards)
        for shard in txn.shards:
            leader = node.leader_of(shard)
            if leader is None:
                self._abort(txn, retry=True)
                return
            node.luigi.send(leader, LuigiAgreed(shard, node.id, txn.id, txn.t))

    def _on_ready(self, msg: LuigiReady) -> None:
        txn = self.active.get(msg.txn)
        if txn is None or txn.phase != START or msg.shard not in txn.pending:
            if txn is None and msg.ok and msg.txn in self.aborted:
                # Started for a transaction we gave up: let it go.
                self._release_one(msg.shard, msg.txn, msg.src)
            return
        if not msg.ok:
            if not self._refused_reads_too_large(txn, msg):
                self._abort(txn, retry=True)
            return
        txn.pending.discard(msg.shard)
        txn.clocks[msg.shard] = msg.clock
        txn.epochs[msg.shard] = msg.epoch
        self._absorb(txn, msg.shard, msg.items, [], [])
        if not txn.pending:
            txn.phase = READ
            self._execute(txn)

    # -- execution hooks (Coordinator._execute calls these) ----------------------------------
    def _bind_fetches(self, txn: LuigiTxn, scratch: Any, ctx: Any) -> None:  # type: ignore[override]
        own = txn.fps.get(self.node.shard)

        def fetch_local(key: bytes) -> bool:
            return own is not None and own.covers(key) and self._fetch_local(txn, scratch, key)

        def fetch_local_range(spec: tuple) -> list[bytes] | None:
            if own is None or not own.covers_range(spec[0], spec[1]):
                return None
            return self._fetch_local_range(txn, scratch, spec)

        ctx.fetch_local = fetch_local
        ctx.fetch_local_range = fetch_local_range

    def _fetch(self, txn: LuigiTxn) -> None:  # type: ignore[override]
        """The run needs keys or ranges not sent at start: read them from
        their leaders (they are started there, so nothing conflicting
        changes them), if the footprint covers them."""
        shard_of = self.node.slots.shard_of
        for key in txn.need_keys:
            fp = txn.fps.get(shard_of(key))
            if fp is None or not fp.covers(key):
                self._fail(txn, errors.LUIGI_OUTSIDE_FOOTPRINT.format(_show(key)))
                return
        for spec in txn.need_ranges:
            for shard in self.node.slots.range_shards(spec[0], spec[1]):
                fp = txn.fps.get(shard)
                if fp is None or not fp.covers_range(spec[0], spec[1]):
                    self._fail(txn, errors.LUIGI_OUTSIDE_FOOTPRINT.format("a range from " + _show(spec[0])))
                    return
        txn.phase = READ
        super()._fetch(txn)

    def _after_run(self, txn: LuigiTxn, ctx: Any) -> None:  # type: ignore[override]
        txn.expired = ctx.expired

    def _prepare(self, txn: LuigiTxn) -> None:  # type: ignore[override]
        # Every involved shard is started (Mako's prepare) already: keep the
        # clocks of the shards that write, and ours (the coordinator record);
        # release the others so their successors may start.
        node = self.node
        if txn.id[1] != node.replica.epoch:
            # We were re-elected while it waited: its record would be logged
            # in an epoch other than its id names, and replicas that read
            # past the end of that epoch would answer "abort" for it.
            self._abort(txn, retry=True)
            return
        expired = txn.expired
        for shard, ops in txn.ops_by_shard.items():
            fp = txn.fps.get(shard)
            for op in ops:
                if fp is None or not (fp.covers_write(op[1]) or op[1] in expired):
                    self._fail(txn, errors.LUIGI_OUTSIDE_FOOTPRINT.format(_show(op[1]) + ", written"))
                    return
        txn.kept = set(txn.ops_by_shard) | {node.shard}
        for shard in list(txn.clocks):
            if shard not in txn.kept:
                self._release_one(shard, txn.id, node.leader_of(shard), committing=True)
                del txn.clocks[shard]
        self._commit(txn)

    def _validate(self, txn: LuigiTxn) -> None:  # type: ignore[override]
        # Read-only: nothing conflicting ran since the start, nothing to check.
        self._done(txn, txn.result, txn.read_deps)

    def _done(self, txn: LuigiTxn, result: Any, deps: tuple) -> None:  # type: ignore[override]
        node = self.node
        if not txn.kept:  # it commits nowhere (read-only, a failed WATCH, an error)
            for shard in txn.shards:
                self._release_one(shard, txn.id, node.leader_of(shard))
        super()._done(txn, result, deps)

    def _fail(self, txn: LuigiTxn, text: str) -> None:
        self._done(txn, _error(text), self.node.replica.zero)

    # -- aborts ------------------------------------------------------------------------------------
    def decision(self, txn_id: tuple, participant_shard: int) -> tuple[str, Any, Any]:
        if (txn_id, participant_shard) in self.released:
            return "abort", None, None
        return super().decision(txn_id, participant_shard)

    def _release_one(self, shard: int, txn_id: tuple, leader: int | None, committing: bool = False) -> None:
        """Let ``shard`` go without an Install. ``committing``: the transaction
        commits on other shards (whose coordinator record then answers a
        participant that asks); else it commits nowhere, which we remember."""
        if not committing:
            self.released[(txn_id, shard)] = True
            if len(self.released) > 200_000:
                del self.released[next(iter(self.released))]
        if shard == self.node.shard:
            self.node.replica.abort_prepared(txn_id)  # finishes its place in our order too
        elif leader is not None:
            self.node.send(leader, TxnAbort(shard, self.node.id, txn_id))

    def _held_shards(self, txn: LuigiTxn) -> list[int]:  # type: ignore[override]
        # Every involved shard: each may have it queued, started or both.
        return list(txn.shards)



def _show(key: bytes) -> str:
    text = key[:40].decode("utf-8", "replace")
    return text + ("..." if len(key) > 40 else "")


def _error(text: str) -> Any:
    from makod.kv.replies import ErrorReply

    return ErrorReply(text)
