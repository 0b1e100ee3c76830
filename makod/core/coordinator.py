"""Mako's coordinator: cross-shard transactions certified among shard leaders
without waiting for replication (DESIGN.md, "Transactions: speculative 2PC").

For each transaction, in phases:

1. READ: fetch every key (and range) it needs from the owning leaders, with
   versions; our own shard answers at once. Run the commands (or the stored
   procedure) on private copies; a procedure that reaches a key not fetched
   yet ends the run (NeedRemote), the key is fetched, and it runs again.
2. PREPARE: every shard it writes locks its keys (a held lock fails at once,
   no waiting) and hands out its next clock (GetClock, post-increment); our
   own shard always does, writes or not.
3. VALIDATE: once every lock is held, every shard checks that what the
   transaction read is unchanged and unlocked (remote reads too). Validating
   before all locks are held would admit write skew.
4. INSTALL: the version vector is the element-wise max of the clocks and of
   the dependency vectors of everything read. Our shard installs its part
   with the coordinator record (every shard's ops, for recovery) and each
   participant installs its part and unlocks. Nobody waits for replication;
   the reply waits for the vector watermark instead (node.finish).

A conflict aborts everything prepared and retries from the start after a
short random backoff, a bounded number of times; a retry holds the keys its
last attempt wrote here until it prepares (coord_reserve.py). Lost Install/Abort messages
are repaired by participants asking (TxnQuery) what became of a transaction
they hold prepared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from makod.core.context import IndexBuilding, KeyLocked, NeedRemote, vec_join
from makod.core.node_participant import READS_TOO_LARGE
from makod.core.participant import INDEXING
from makod.core.coord_read import Reads
from makod.core.coord_reserve import HotKeyReservations
from makod.core.coord_slots import SlotMoves
from makod.core.coord_txn import (
    BACKOFF, INSTALL, KEYSPACE_IN_MULTI, PREPARE, READ, VALIDATE, DistTxn, ScratchContext,
)
from makod.kv import dbs, notify
from makod.kv.keyspace import Keyspace
from makod.core.procedures import Abort, footprint_keys
from makod.kv.records import OP_FLUSH
from makod.kv.requests import TxnRequest, WatchRequest
from makod.core.txn_messages import (
    TxnAbort,
    TxnAborted,
    TxnInstall,
    TxnInstalled,
    TxnPrepare,
    TxnPrepared,
    TxnReadReply,
    TxnValidate,
    TxnValidated,
)
from makod.codec import pack
from makod.kv import errors
from makod.kv.errors import CommandError
from makod.kv.replies import NULL_ARRAY, ErrorReply

if TYPE_CHECKING:
    from makod.core.node import NodeCore

__all__ = ["Coordinator", "DistTxn", "ScratchContext", "READ", "PREPARE", "VALIDATE", "BACKOFF", "INSTALL"]

# Time a phase is allowed per key it carries, on top of txn_timeout_ms: about
# three times what a key costs the shards on this machine (~15 us).
DEADLINE_MS_PER_KEY = 0.05

# The TRYAGAIN a transaction that gave up answers, by its last attempt's cause
# (any other cause: a conflict).
_GAVE_UP_ERRORS = {"timeout": errors.TRYAGAIN_TIMED_OUT, "indexing": errors.TRYAGAIN_INDEXING}


class Coordinator(Reads, SlotMoves, HotKeyReservations):
    def __init__(self, node: "NodeCore") -> None:
        self.node = node
        self.active: dict[tuple, DistTxn] = {}
        self.seq = node.next_internal  # a random incarnation, like request ids
        self.aborted: dict[tuple, bool] = {}
        # Counters for /metrics: distributed transactions committed, and
        # aborted attempts by cause (each retry is an attempt).
        self.commits = 0
        self.aborts: dict[str, int] = {}
        self.reservations: dict[int, tuple] = {}  # id(txn) -> (mark, keys): coord_reserve.py

    # -- starting ------------------------------------------------------------------------
    def start(self, token: Any, request: Any) -> None:
        node = self.node
        self.seq += 1
        txn = DistTxn((node.id, node.replica.epoch, self.seq), token, request)
        self.active[txn.id] = txn
        self._begin(txn)

    def _begin(self, txn: DistTxn) -> None:
        txn.attempt += 1
        txn.phase = READ
        txn.fetched = {}
        txn.ranges = {}
        txn.clocks = {}
        txn.range_deps = self.node.replica.zero
        txn.epochs = {}
        txn.ops_by_shard = {}
        request = txn.request
        # What is fetched and locked are internal keys (kv/dbs.py).
        if type(request) is WatchRequest:
            txn.need_keys = {dbs.encode(request.db, k) for k in request.keys}
        else:
            keys: set[bytes] = set()
            for i, argv in enumerate(request.commands):
                spec = self.node.lookup(argv)
                db = request.db_of(i)
                keys.update(dbs.encode(db, k) for k in spec.keys(argv))
                if "movablekeys" in spec.flags:
                    # A procedure's declared footprint (its keys are database 0's):
                    # fetch it all in one round.
                    keys.update(dbs.encode(0, k) for k in footprint_keys(argv))
            keys.update(dbs.encode(db, k) for db, k, _ in request.watch_items())
            txn.need_keys = keys
        txn.need_ranges = set()
        txn.slots_version = self.node.slots.current()
        if not self._reserve(txn):
            # Its keys here are held by another: wait, not counted as an attempt.
            txn.attempt -= 1
            txn.phase = BACKOFF
            txn.retry_at = self.node.mono_ms + self.node.rng.random() * 2.0
            return
        self._fetch(txn)

    def _execute(self, txn: DistTxn) -> None:
        node = self.node
        request = txn.request
        zero = node.replica.zero
        deps = txn.range_deps
        try:
            for _rec, _version, rec_deps in txn.fetched.values():
                if rec_deps is not None:
                    deps = vec_join(deps, rec_deps, node.wm)
        except KeyLocked:
            # What it read depends on an ended epoch whose verdict is not in yet.
            self._abort(txn, retry=True, cause="pending_epoch")
            return
        txn.read_deps = deps
        if type(request) is WatchRequest:
            self._done(txn, [txn.fetched[dbs.encode(request.db, k)][1] for k in request.keys], zero)
            return
        if request.watches:
            for db, key, version in request.watch_items():
                if txn.fetched[dbs.encode(db, key)][1] != version:
                    self._done(txn, NULL_ARRAY, deps)
                    return
        scratch = Keyspace()
        for key, (rec, _version, rec_deps) in txn.fetched.items():
            if rec is not None:
                rec.deps = rec_deps
                scratch.data[key] = rec
        if txn.wall_ms is None:
            txn.wall_ms = node.replica.wall_ms
        ctx = ScratchContext(
            scratch, 0, zero, zero, txn.wall_ms, node.rng, node.replica.matcher_factory, wm=node.wm
        )
        ctx.fetched_keys = txn.fetched
        ctx.whole_ranges = []
        # Each range as one list: what every shard it spans returned.
        ctx.fetched_ranges = {spec: [k for keys in parts.values() for k in keys] for spec, parts in txn.ranges.items()}
        self._bind_fetches(txn, scratch, ctx)
        ctx.proto_max_bulk_len = node.cfg.proto_max_bulk_len
        ctx.max_txn_bytes = node.cfg.max_txn_bytes
        ctx.databases = node.cfg.databases
        ctx.home_tag = node.replica.home_tag
        if node.replica.notify:
            ctx.events = []
        ctx.may_block = not request.multi
        try:
            replies = []
            for i, argv in enumerate(request.commands):
                ctx.db = request.db_of(i)
                spec = node.lookup(argv)
                if spec.scope == "keyspace":
                    replies.append(ErrorReply(KEYSPACE_IN_MULTI))
                    continue
                start = len(ctx.ops)
                try:
                    replies.append(spec.handler(ctx, argv))
                except CommandError as exc:
                    replies.append(ErrorReply(exc.text))
                if ctx.events is not None:
                    notify.collect(ctx, spec, start, argv)
            result: Any = replies if request.multi else replies[0]
        except NeedRemote as need:
            # The run changed its copies of fetched records in place (container
            # values, versions): put them back before the rerun reads them.
            scratch.rollback(ctx.undo)
            txn.need_keys.update(need.keys)
            txn.need_ranges.update(need.ranges)
            self._fetch(txn)
            return
        except IndexBuilding:
            self._abort(txn, retry=True, cause="indexing")
            return
        except KeyLocked:
            self._abort(txn, retry=True, cause="locked")
            return
        except Abort as exc:
            # The procedure gave up after reading: answer that, once what it
            # read is known to be a consistent snapshot.
            result = ErrorReply(exc.reply)
            ctx.ops = []
            ctx.events = None
        except AssertionError:
            raise  # an invariant of the core broke: not a handler's bug
        except Exception as exc:  # a command handler's bug: fail the transaction, keep serving
            self._done(txn, ErrorReply(errors.INTERNAL_ERROR.format(type(exc).__name__, exc)), zero)
            return
        txn.result = result
        txn.events = ctx.events or None
        by_shard: dict[int, list] = {}
        for op in ctx.ops:
            if op[0] == OP_FLUSH:
                self._done(txn, ErrorReply(KEYSPACE_IN_MULTI), deps)
                return
            by_shard.setdefault(node.slots.shard_of(op[1]), []).append(op)
        if by_shard:
            # Every shard's ops: our own slot carries them all in the record.
            size = len(pack(ctx.ops))
            if size > node.cfg.max_txn_bytes:
                self._done(txn, ErrorReply(errors.TXN_WRITES_TOO_LARGE.format(size, node.cfg.max_txn_bytes)), deps)
                return
        txn.ops_by_shard = by_shard
        txn.local_writes = sorted({op[1] for op in by_shard.get(node.shard, ())})
        self._after_run(txn, ctx)
        if by_shard:
            self._prepare(txn)
        else:
            self._validate(txn)

    def _after_run(self, txn: DistTxn, ctx: ScratchContext) -> None:
        """A run finished with ops to commit (a hook for protocols that check them)."""

    def _enter(self, txn: DistTxn, phase: int) -> None:
        """Start a phase that waits on shards: nothing answered yet, a fresh deadline."""
        txn.phase = phase
        txn.pending = set()
        txn.deadline = self._deadline(txn, sum(len(ops) for ops in txn.ops_by_shard.values()))

    def _deadline(self, txn: DistTxn, keys: int) -> float:
        """When a phase gives up: txn_timeout_ms, plus time for its size. A
        phase over 200,000 keys takes seconds of CPU here and at every shard
        (MSET or DEL of that many keys across shards took ~3 s a run), so a
        fixed deadline aborted it every time and retried it until TRYAGAIN."""
        size = keys + len(txn.fetched)
        return self.node.mono_ms + self.node.cfg.txn_timeout_ms + size * DEADLINE_MS_PER_KEY

    # -- PREPARE ------------------------------------------------------------------------------------
    def _prepare(self, txn: DistTxn) -> None:
        node = self.node
        self._release(txn)  # its prepare locks what it writes from here on
        if self._slots_moved(txn):
            return
        self._enter(txn, PREPARE)
        shards = set(txn.ops_by_shard) | {node.shard}  # our own clock, writes or not
        for shard in sorted(shards):
            keys = sorted({op[1] for op in txn.ops_by_shard.get(shard, [])})
            if shard == node.shard:
                ok, clock, _reason = node.replica.prepare(txn.id, keys)
                if not ok:
                    self._abort(txn, retry=True, cause="prepare_conflict")
                    return
                txn.clocks[shard] = clock
                txn.epochs[shard] = node.replica.epoch
                if node.cfg.protocol == "2pc-paxos":
                    # The baseline's own prepare is replicated before it counts.
                    txn.pending.add(shard)
                    node.replica.after_replication(lambda txn_id=txn.id: self._local_prepared(txn_id))
                continue
            leader = node.leader_of(shard)
            if leader is None:
                self._abort(txn, retry=True, cause="no_leader")
                return
            txn.pending.add(shard)
            node.send(leader, TxnPrepare(shard, node.id, txn.id, keys))
        if not txn.pending:
            self._validate(txn)

    def _local_prepared(self, txn_id: tuple) -> None:
        txn = self.active.get(txn_id)
        if txn is None or txn.phase != PREPARE:
            return
        txn.pending.discard(self.node.shard)
        if not txn.pending:
            self._validate(txn)

    # -- VALIDATE ------------------------------------------------------------------------------------
    def _validate(self, txn: DistTxn) -> None:
        node = self.node
        self._release(txn)  # (read-only: nothing was prepared)
        if self._slots_moved(txn):
            return
        self._enter(txn, VALIDATE)
        reads: dict[int, list] = {}
        ranges: dict[int, list] = {}
        for key, (_rec, version, _deps) in txn.fetched.items():
            reads.setdefault(node.slots.shard_of(key), []).append([key, version])
        for spec, parts in txn.ranges.items():
            for shard, keys in parts.items():
                seen = [[k, txn.fetched[k][1]] for k in keys]
                ranges.setdefault(shard, []).append([*spec, seen])
        for shard in sorted(set(reads) | set(ranges)):
            if shard == node.shard:
                # Like any participant, our shard validates only under a valid lease.
                ok = node.replica.can_answer_reads() and node.replica.validate(
                    txn.id, reads.get(shard, []), ranges.get(shard, [])
                )[0]
                if not ok:
                    self._abort(txn, retry=True, cause="validation")
                    return
                continue
            leader = node.leader_of(shard)
            if leader is None:
                self._abort(txn, retry=True, cause="no_leader")
                return
            txn.pending.add(shard)
            node.send(leader, TxnValidate(shard, node.id, txn.id, reads.get(shard, []), ranges.get(shard, [])))
        if not txn.pending:
            self._commit(txn)

    # -- INSTALL ---------------------------------------------------------------------------------------
    def _commit(self, txn: DistTxn) -> None:
        node = self.node
        if not txn.ops_by_shard:
            # Read-only: nothing to install; the reply waits for what it read.
            self._done(txn, txn.result, txn.read_deps)
            return
        clocks = list(node.replica.zero)
        for shard, clock in txn.clocks.items():
            clocks[shard] = clock
        try:
            # A new epoch's clock must not hide a dependency on an older epoch
            # of the same shard whose fate is still open (see vec_join).
            deps = vec_join(txn.read_deps, tuple(clocks), node.wm)
        except KeyLocked:
            self._abort(txn, retry=True, cause="pending_epoch")
            return
        remote_ops = {s: ops for s, ops in txn.ops_by_shard.items() if s != node.shard}
        record = [list(txn.id), remote_ops]
        ok, _ = node.replica.install_prepared(txn.id, deps, txn.ops_by_shard.get(node.shard, []), record)
        assert ok, "our own prepared part vanished while we held the role"
        if node.cfg.protocol == "2pc-paxos":
            # The baseline replicates its decision (our record) before any
            # participant installs, holding every lock meanwhile.
            txn.phase = INSTALL
            txn.deadline = node.mono_ms + 10 * node.cfg.txn_timeout_ms
            node.replica.after_replication(lambda: self._send_installs(txn, deps, remote_ops))
            return
        self._send_installs(txn, deps, remote_ops)

    def _send_installs(self, txn: DistTxn, deps: tuple, remote_ops: dict) -> None:
        node = self.node
        for shard, ops in remote_ops.items():
            leader = node.leader_of(shard)
            if leader is not None:
                node.send(leader, TxnInstall(shard, node.id, txn.id, txn.epochs[shard], deps, ops))
            # A lost Install is repaired by the participant's TxnQuery.
        self._done(txn, txn.result, deps)

    def _done(self, txn: DistTxn, result: Any, deps: tuple) -> None:
        self._release(txn)
        self.commits += 1
        self.active.pop(txn.id, None)
        by_shard = txn.ops_by_shard
        ops = self._written(txn) if by_shard and self.node.track_writes else None
        self.node.finish(txn.token, result, deps, events=txn.events if by_shard else None, ops=ops)

    def _written(self, txn: DistTxn) -> list:
        """Every shard's ops of a transaction, for client-side caching's invalidations."""
        return [op for ops in txn.ops_by_shard.values() for op in ops]

    # -- aborts and retries ----------------------------------------------------------------------------
    def _held_shards(self, txn: DistTxn) -> list[int]:
        """The shards that may hold something of ``txn`` (locks, a place in line)."""
        return list(txn.clocks) + list(txn.pending if txn.phase == PREPARE else [])

    def _abort(self, txn: DistTxn, retry: bool, cause: str = "conflict", error: str | None = None) -> None:
        """``error``: the reply when it does not retry (default: TRYAGAIN, for the cause)."""
        node = self.node
        self._release(txn)
        self.aborts[cause] = self.aborts.get(cause, 0) + 1  # for /metrics
        for shard in self._held_shards(txn):
            if shard == node.shard:
                node.replica.abort_prepared(txn.id)
                continue
            leader = node.leader_of(shard)
            if leader is not None:
                node.send(leader, TxnAbort(shard, node.id, txn.id))
        self.aborted[txn.id] = True
        if len(self.aborted) > 100_000:
            del self.aborted[next(iter(self.aborted))]
        self.active.pop(txn.id, None)
        if cause == "slot_moving":
            retry, error = self._wait_out_move(txn, retry, error)
        if retry and txn.attempt < node.cfg.max_txn_attempts and node.replica.can_serve():
            # Same transaction, new identity: the old one is aborted for good.
            self.seq += 1
            txn.id = (node.id, node.replica.epoch, self.seq)
            txn.phase = BACKOFF
            # Randomized exponential backoff: contending transactions spread out.
            window = 20.0 if cause == "slot_moving" else min(100.0, 2.0 ** txn.attempt)
            txn.retry_at = node.mono_ms + node.rng.random() * window
            txn.pending = set()
            self.active[txn.id] = txn
            return
        self.aborts["gave_up"] = self.aborts.get("gave_up", 0) + 1
        # Say why the last attempt failed: a timeout is not a conflict.
        if error is None:
            error = _GAVE_UP_ERRORS.get(cause, errors.TRYAGAIN_CONFLICT)
        node.deliver_error(txn.token, error)

    def _refused_reads_too_large(self, txn: DistTxn, msg: Any) -> bool:
        """If a shard refused ``txn``'s reads for their size (node_participant.py),
        fail it with that error (retrying cannot help) and say so."""
        if not msg.reason.startswith(READS_TOO_LARGE):
            return False
        size = msg.reason[len(READS_TOO_LARGE):]
        error = errors.TXN_READS_TOO_LARGE.format(size, msg.shard, self.node.cfg.max_txn_bytes)
        self._abort(txn, retry=False, cause="too_large", error=error)
        return True

    def tick(self) -> None:
        self._drop_orphan_reservations()
        now = self.node.mono_ms
        for txn in list(self.active.values()):
            if txn.phase == BACKOFF:
                if now >= txn.retry_at:
                    self._begin(txn)
            elif txn.phase == INSTALL:
                continue  # decided: only its replication is awaited
            elif now >= txn.deadline:
                self._abort(txn, retry=True, cause="timeout")

    def deposed(self) -> None:
        """We no longer lead: nothing undecided may go on; let another leader run it."""
        node = self.node
        for txn in list(self.active.values()):
            self._release(txn)
            if txn.phase == INSTALL:
                # Decided and installed here (now undone with our speculative
                # state): its fate is the epoch verdict's; the client learns it.
                self.active.pop(txn.id, None)
                node.deliver_error(txn.token, errors.CLUSTERDOWN_UNKNOWN_OUTCOME.format(node.shard))
                continue
            for shard in self._held_shards(txn):
                if shard != node.shard:
                    leader = node.leader_of(shard)
                    if leader is not None:
                        node.send(leader, TxnAbort(shard, node.id, txn.id))
            self.aborted[txn.id] = True
            self.active.pop(txn.id, None)
            # Nothing of it was installed: the request may run elsewhere.
            node._wait(txn.token, txn.request)

    # -- replies from participants -------------------------------------------------------------------------
    def handle(self, msg: Any) -> None:
        txn = self.active.get(msg.txn)
        t = type(msg)
        if txn is None:
            if t is TxnPrepared and msg.ok and msg.txn in self.aborted:
                # A late lock for a transaction we aborted: release it. (A late
                # or duplicated reply for one we committed must be ignored.)
                self.node.send(msg.src, TxnAbort(msg.shard, self.node.id, msg.txn))
            return
        if msg.shard not in txn.pending:
            return
        if t is TxnReadReply and txn.phase == READ:
            if msg.round != txn.read_round:
                return  # late or duplicated: it answers an earlier round
            if not msg.ok:
                if not self._refused_reads_too_large(txn, msg) and not self._refused_moved(txn, msg):
                    self._abort(txn, retry=True, cause="indexing" if msg.reason == INDEXING else "read_refused")
                return
            txn.pending.discard(msg.shard)
            if msg.deps:
                try:
                    txn.range_deps = vec_join(txn.range_deps, msg.deps, self.node.wm)
                except KeyLocked:
                    self._abort(txn, retry=True, cause="pending_epoch")
                    return
            self._absorb(txn, msg.shard, msg.items, txn.asked.get(msg.shard, []), msg.ranges)
            if not txn.pending:
                self._execute(txn)
        elif t is TxnPrepared and txn.phase == PREPARE:
            txn.pending.discard(msg.shard)
            if not msg.ok:
                if not self._refused_moved(txn, msg):
                    self._abort(txn, retry=True, cause="prepare_conflict")
                return
            txn.clocks[msg.shard] = msg.clock
            txn.epochs[msg.shard] = msg.epoch
            if not txn.pending:
                self._validate(txn)
        elif t is TxnValidated and txn.phase == VALIDATE:
            txn.pending.discard(msg.shard)
            if not msg.ok:
                if not self._refused_moved(txn, msg):
                    self._abort(txn, retry=True, cause="indexing" if msg.reason == INDEXING else "validation")
                return
            if not txn.pending:
                self._commit(txn)
        elif t in (TxnInstalled, TxnAborted):
            pass

    # -- answering participants --------------------------------------------------------------------------
    def decision(self, txn_id: tuple, participant_shard: int) -> tuple[str, Any, Any]:
        if txn_id in self.active:
            return "pending", None, None
        if txn_id in self.aborted:
            return "abort", None, None
        return self.node.replica.decision_for(txn_id, participant_shard)

    # -- whole-keyspace commands -------------------------------------------------------------------------
    def gather(self, token: Any, request: TxnRequest) -> None:
        from makod.core.fanout import Gather

        Gather(self.node, token, request).start()

