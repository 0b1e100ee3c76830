"""One replica of one shard: local execution, the Paxos log and apply (the
shard's side of cross-shard certification is in participant.py).

Pure: the node core feeds time, messages and requests; ``ready()`` hands back
what to persist and send. Life of a transaction on a shard leader:

1. *installed*: a single-shard transaction runs start to finish in one call
   (nothing interleaves), or a cross-shard one is installed when its
   coordinator says so; either way its writes are in memory at once, undo
   kept, and later work sees them;
2. *logged*: batches of installed transactions go into Paxos slots, each with
   a marker: every version of this shard at or below it is in that slot or an
   earlier one (``min(granted clocks) - 1``, else the clock);
3. *final* once its whole version vector is covered by the watermarks (this
   shard's comes from chosen markers, others' from gossip); or *rolled back*
   if an ended epoch's verdict (FVW) excludes it: undone here, skipped by
   every replica's apply, its client told so.

Followers apply chosen transactions in log order, each only once final, and
skip rolled-back ones, so every replica ends in the same state. A new leader
first gets what it re-proposes chosen, then closes the epoch before it in
its epoch entry (the FVW is what the chosen log proves replicated, see
epochs.py), and serves once everything before that entry is resolved.
"""

from __future__ import annotations

import random
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Callable

from makod.core.context import DependencyInDoubt, DirectContext, KeyLocked, NeedRemote, vec_join
from makod.core.coord_records import CoordRecords
from makod.core.durability import Checkpoint, CheckpointTracker
from makod.core.entries import (
    encode_batch,
    encode_epoch,
)
from makod.core.replica_status import replica_status
from makod.core.marks import read_marks as _read_marks, read_members as _read_members
from makod.core.membership import Membership
from makod.kv.keyspace import Keyspace
from makod.core.messages import Message
from makod.core.chosen import INSTALLED, UNDONE, ChosenSlots, Txn
from makod.core.participant import Participant, Prepared
from makod.core.paxos import LEADER, Paxos, PaxosConfig
from makod.core.procedures import Abort
from makod.core.slot_table import TABLE_KEY
from makod.core.run_commands import run_commands
from makod.kv.requests import WatchRequest
from makod.core.watermark import EPOCH_SHIFT, WatermarkTable
from makod.codec import pack
from makod.kv import errors
from makod.kv.replies import ErrorReply



@dataclass
class ReplicaConfig:
    max_batch_txns: int = 2048
    max_batch_ops: int = 16384
    max_inflight_batches: int = 4
    max_queued_requests: int = 10_000
    max_held_replies: int = 100_000
    queue_timeout_ms: int = 5_000
    forward_timeout_ms: int = 10_000
    txn_timeout_ms: int = 2_000
    orphan_query_ms: int = 1_000
    max_txn_attempts: int = 24
    active_expire_keys_per_tick: int = 200
    proto_max_bulk_len: int = 512 * 1024 * 1024
    # Encoded bytes one transaction may write here, or read from another shard (config.py).
    max_txn_bytes: int = 16 * 1024 * 1024
    databases: int = 16  # SELECT, MOVE, COPY DB and SWAPDB accept 0..databases-1
    protocol: str = "mako"  # or "2pc-paxos", "luigi"
    # Luigi: a coordinator stamps t = now + max one-way delay to the
    # involved leaders + this headroom (microseconds).
    luigi_headroom_us: int = 1_000
    ack: str = "durable"  # or "speculative"


class ReplicaCore(Participant, ChosenSlots):
    def __init__(
        self,
        shard: int,
        node_id: int,
        num_shards: int,
        voters: list[int],
        learners: list[int],
        *,
        rng: random.Random,
        wm: WatermarkTable | None = None,
        config: ReplicaConfig | None = None,
        paxos_config: PaxosConfig | None = None,
        keyspace: Keyspace | None = None,
        applied_slot: int = 0,
        clock: int = 0,
        promised: int = 0,
        log: dict[int, tuple[int, bytes]] | None = None,
        marks: list | None = None,
        records: list | None = None,
        handlers: Callable[[list[bytes]], Any] | None = None,
        matcher_factory: Callable[[bytes], Callable[[bytes], bool]] | None = None,
        owns: Callable[[bytes], bool] | None = None,
        range_local: Callable[[bytes, bytes | None], bool] | None = None,
        preferred_leader: int | None = None,
    ) -> None:
        self.shard = shard
        self.id = node_id
        self.num_shards = num_shards
        self.cfg = config or ReplicaConfig()
        self.rng = rng
        self.ks = keyspace if keyspace is not None else Keyspace()
        self.lookup = handlers
        self.matcher_factory = matcher_factory
        self.owns = owns if num_shards > 1 else None
        self.range_local = range_local if num_shards > 1 else None
        self.slot_map: Any = None  # the node's SlotMap, when slots can move (DirectContext.slot_map)
        self.home_tag = b"{fn}"  # FUNCTION libraries' key (a hidden key: each shard's own)
        self.notify = False  # collect keyspace notifications (kv/notify.py)
        self.last_events: list | None = None  # those of the last execute()
        self.last_ops: list | None = None  # what the last execute() wrote
        # With client-side caching on: the deletes of the active expiry, for
        # the node to invalidate (NodeCore.ready).
        self.expired_ops: list | None = None
        # Set when this replica starts serving as leader (the node reads and clears it).
        self.newly_serving = False
        self.wm = wm if wm is not None else WatermarkTable(num_shards)
        # The membership in force after applied_slot: from the checkpoint
        # once a change was applied, else the configuration's (membership.py).
        stored = _read_members(marks)
        self.members = stored or Membership.of(voters, learners)
        self.members_pending: dict = {}  # slot -> Change: chosen CONFIG slots not yet applied
        self.paxos = Paxos(
            shard, node_id, list(self.members.voters), list(self.members.learners), paxos_config or PaxosConfig(),
            random.Random(rng.random()), promised=promised, log=log, chosen_upto=applied_slot,
            preferred=preferred_leader,
        )
        self.tracker = CheckpointTracker(self.ks)
        self.apply_errors = 0  # chosen entries or ops this version could not apply (_count_apply_error)
        self.replay_skipped_ops = 0  # ops already in a newer checkpointed record (_apply_ops)
        self.last_apply_error = ""
        self.applied_slot = applied_slot
        self.applied_clock = clock
        self.clock = clock
        self.mono_ms = 0.0
        self.wall_ms = 0
        self.zero = tuple(0 for _ in range(num_shards))
        # This shard's epochs as its chosen log tells them (epochs.py), and the
        # records of the cross-shard transactions it coordinated.
        self.chain, closed, closed_below, evicted_epoch = _read_marks(marks, applied_slot)
        self.wm.observe(shard, self.chain.epoch, self.chain.marker, closed, closed_below)
        self.coord_records = CoordRecords.from_encoded(records or [], evicted_epoch)

        # Leader state.
        self.was_leader = False
        self.epoch = 0
        self.epoch_slot: int | None = None
        self.serving = False
        self.txns: deque[Txn] = deque()  # installed, not final, in install order
        # The join of their dependency vectors (None: work it out when asked).
        self._spec_deps: tuple[int, ...] | None = None
        self._verdicts_scanned = 0  # wm.verdicts when on_marks_changed last scanned self.txns
        self._marks_scanned = -1  # wm.version then
        self.batch: list[Txn] = []  # installed, not yet proposed
        self.batch_ops = 0
        self.inflight: dict[int, tuple[int, list[Txn], int]] = {}  # slot -> (marker, txns, seq)
        self.last_marker = 0  # the highest marker proposed in this epoch
        self.batch_seq = 0  # the last batch number proposed in this epoch
        # Callbacks to run once the next proposed slot is chosen (2pc-paxos
        # waits for replication of its prepare and its decision this way).
        self.barriers: list[Callable[[], None]] = []
        self.inflight_barriers: dict[int, list[Callable[[], None]]] = {}
        # Committed slots not yet fully resolved: [slot, deque of Txn or decoded txn].
        self.unresolved: deque[list] = deque()

        # Participant state (cross-shard certification).
        self.locks: dict[bytes, tuple] = {}
        self.granted: dict[tuple, int] = {}  # prepared txn -> clock handed out
        self.prepared: dict[tuple, Prepared] = {}
        self.recent_outcomes: OrderedDict[tuple, str] = OrderedDict()  # txn -> "installed" | "aborted"
        self.rolled_back_versions: list[int] = []  # for status/tests

        self.orphans_to_query: list[tuple] = []  # drained by the node core
        self.resolve_more = False  # resolve() stopped on its budget
        self.lock_released = False  # tells the node core to retry blocked requests
        # Luigi (luigi.py) hooks: told when a prepared transaction is installed
        # or aborted here, and asked whether a key may expire now (an
        # expiry is a write, ordered like any other).
        self.prepared_done: Callable[[tuple], None] | None = None
        self.may_expire: Callable[[bytes], bool] | None = None

    # -- time and inputs -------------------------------------------------------------------
    def tick(self, mono_ms: float, wall_ms: int) -> None:
        self.observe_time(mono_ms, wall_ms)
        self.paxos.tick(mono_ms)
        self.after_paxos()
        self.on_marks_changed(force=True)
        if self.ks.indexes.building and self.ks.indexes.build_step():
            self.lock_released = True  # what waited for the index may run (routing._retry_blocked)
        if self.serving:
            self._active_expire()
            self._query_orphans()

    def observe_time(self, mono_ms: float, wall_ms: int) -> None:
        if mono_ms > self.paxos.now:
            self.paxos.now = mono_ms
        if mono_ms > self.mono_ms:
            self.mono_ms = mono_ms
        if wall_ms > self.wall_ms:
            self.wall_ms = wall_ms

    def step_paxos(self, msg: Message) -> None:
        self.paxos.step(msg)
        self.after_paxos()

    def can_serve(self) -> bool:
        # lease_valid() is False while a handover is pending: new work waits
        # and goes to the successor.
        return self.serving and self.paxos.lease_valid()

    def can_answer_reads(self) -> bool:
        """May this replica answer a cross-shard read or validation? Those answer
        for the present, so only a leader whose lease is valid may."""
        return self.can_serve()

    def drained(self) -> bool:
        """Nothing this leader installed, proposed or prepared is still in doubt."""
        return not (self.txns or self.batch or self.inflight or self.prepared or self.barriers)

    # -- leadership -------------------------------------------------------------------------
    def after_paxos(self) -> None:
        is_leader = self.paxos.role == LEADER
        if is_leader and not self.was_leader:
            self._on_elected()
        elif self.was_leader and not is_leader:
            self._on_deposed()
        self.was_leader = is_leader
        if (
            is_leader
            and self.epoch_slot is None
            and self.paxos.handed >= self.paxos.leader_since_slot
        ):
            self._propose_epoch_entry()
        if (
            is_leader
            and not self.serving
            and self.epoch_slot is not None
            and self.applied_slot >= self.epoch_slot
        ):
            self.serving = True
            self.newly_serving = True
            self.clock = max(self.clock, self.epoch << EPOCH_SHIFT)
            self.last_marker = 0
            self.batch_seq = 0
        self._check()

    def _on_elected(self) -> None:
        """Our epoch begins; its entry waits until what we re-propose is chosen."""
        self.epoch = self.paxos.promised
        self.serving = False
        self.epoch_slot = None

    def _propose_epoch_entry(self) -> None:
        """Every slot we re-proposed is chosen and read into the chain: close the
        epoch before ours with what that chosen log proves replicated."""
        chain = self.chain
        own = self.wm.shards[self.shard]
        if own.epoch == chain.epoch:
            # The watermark we heard of comes from chosen markers of the same log.
            assert own.w <= chain.marker, (own.w, chain)
        slot = self.paxos.propose(encode_epoch(self.epoch, [chain.verdict(), self.epoch]))
        assert slot is not None
        self.epoch_slot = slot

    def _on_deposed(self) -> None:
        """Undo every speculative write, newest first; forget certification state."""
        for txn in reversed(self.txns):
            if txn.state == INSTALLED:
                self.ks.rollback(txn.undo)
                txn.state = UNDONE
        self.txns.clear()
        self._spec_deps = self.zero
        self.batch = []
        self.batch_ops = 0
        self.inflight = {}
        self.barriers = []
        self.inflight_barriers = {}
        self.tracker.rolled_back_all()
        self.clock = self.applied_clock
        self.serving = False
        self.epoch_slot = None
        self.locks.clear()
        self.granted.clear()
        self.prepared.clear()
        # Entries of our own slots must now be applied like any follower's:
        # rebuild what is still unresolved from the log.
        self._rebuild_unresolved()

    def _rebuild_unresolved(self) -> None:
        self.unresolved = deque()
        for slot in range(self.applied_slot + 1, self.paxos.handed + 1):
            value = self.paxos.log.get(slot)
            if value is not None:
                self.unresolved.append([slot, self._decoded_items(self._read_entry(slot, value[1]))])

    def _check(self) -> None:
        assert self.applied_slot <= self.paxos.commit, (self.applied_slot, self.paxos.commit)
        if self.serving:
            assert self.paxos.role == LEADER

    def add_shards(self, num_shards: int, owns: Callable[[bytes], bool],
                   range_local: Callable[[bytes, bytes | None], bool]) -> None:
        """The cluster grew (NodeCore._add_shards): longer vectors from now on."""
        assert num_shards >= self.num_shards, (num_shards, self.num_shards)
        self.num_shards = num_shards
        self.zero = (0,) * num_shards
        self.owns = owns
        self.range_local = range_local
        self._spec_deps = None  # rebuilt at the new length

    # -- local execution ----------------------------------------------------------------------
    def _own_vector(self, clock: int) -> tuple[int, ...]:
        if self.num_shards == 1:
            return (clock,)
        vec = list(self.zero)
        vec[self.shard] = clock
        return tuple(vec)

    def new_context(self, trap_remote: bool = False, owns: Callable[[bytes], bool] | None = None) -> DirectContext:
        """``owns``: which keys the run may touch (default: this shard's,
        checked only with ``trap_remote``); any other ends it (NeedRemote)."""
        version = self.clock + 1
        ctx = DirectContext(
            self.ks, version, self._own_vector(version), self.spec_deps, self.wall_ms, self.rng,
            self.matcher_factory, self.tracker.before_write, self.locks,
            (owns or self.owns) if trap_remote else None, self.wm,
        )
        if trap_remote:
            ctx.range_local = self.range_local
        ctx.proto_max_bulk_len = self.cfg.proto_max_bulk_len
        ctx.max_txn_bytes = self.cfg.max_txn_bytes
        ctx.databases = self.cfg.databases
        ctx.home_tag = self.home_tag
        ctx.slot_map = self.slot_map
        if self.notify:
            ctx.events = []
        return ctx

    def execute(self, request: Any, trap_remote: bool = False, owns: Callable[[bytes], bool] | None = None,
                writable: Callable[[bytes], bool] | None = None) -> tuple[Any, tuple[int, ...]]:
        """Run a single-shard request here and now; returns (result, deps).

        Raises KeyLocked (a cross-shard transaction holds a key: retry later)
        or NeedRemote (with ``trap_remote``: the request touched another
        shard's key) after undoing everything it did.
        """
        ctx = self.new_context(trap_remote, owns)
        self.last_events = None
        self.last_ops = None
        try:
            if type(request) is WatchRequest:
                ctx.db = request.db
                result: Any = [ctx.version_of(key) for key in request.keys]
            else:
                result = run_commands(self.lookup, ctx, request)
        except Abort as exc:
            self._undo(ctx)
            return ErrorReply(exc.reply), ctx.deps
        except BaseException:
            self._undo(ctx)
            raise
        if writable is not None:
            # The run may write only what it declared it writes (Luigi let
            # it run beside transactions that only read the rest).
            denied = [key for key in ctx.written if not writable(key) and key not in ctx.expired]
            if denied or ctx.has_flush:
                self._undo(ctx)
                raise NeedRemote(denied[:1] or [b""])
        if ctx.ops:
            size = len(pack(ctx.ops))  # ~0.3 us for one SET
            if size > self.cfg.max_txn_bytes and self.slot_map is not None:
                # The shard's slot table is bounded on its own (16,384 slots)
                # and must stay writable however fragmented it gets.
                size = len(pack([op for op in ctx.ops if len(op) < 2 or op[1] != TABLE_KEY]))
            if size > self.cfg.max_txn_bytes:
                self._undo(ctx)
                return ErrorReply(errors.TXN_WRITES_TOO_LARGE.format(size, self.cfg.max_txn_bytes)), ctx.deps
        self.last_events = ctx.events or None
        self.last_ops = ctx.ops
        if ctx.ops:
            self.install(ctx)
            return result, ctx.deps  # install() finished the context
        return result, ctx.deps

    def _undo(self, ctx: DirectContext) -> None:
        self.ks.rollback(ctx.undo)
        self.tracker.aborted(ctx.captured)

    def install(self, ctx: DirectContext, record: Any = None) -> Txn | None:
        if not ctx.ops:
            return None
        deps = ctx.finish()
        txn = Txn(ctx.version, deps, ctx.ops, ctx.undo, ctx.written, ctx.has_flush, record)
        self.clock = max(self.clock, ctx.version)
        self._add(txn)
        return txn

    def _add_certified(self, version: int, deps: tuple, ops: list, undo: list, keys: set, has_flush: bool,
                       record: Any) -> None:
        self._add(Txn(version, deps, ops, undo, keys, has_flush, record))

    def spec_deps(self) -> tuple[int, ...]:
        """What a read of the whole keyspace (or a range) depends on: every version
        installed here, and whatever the transactions not yet final depend on
        (a key they deleted is missing from the read, yet comes back if they
        are rolled back). Raises DependencyInDoubt like vec_join."""
        deps = self._spec_deps
        if deps is None:
            deps = self.zero
            for txn in self.txns:
                if txn.state == INSTALLED:
                    deps = vec_join(deps, txn.deps, self.wm)
            self._spec_deps = deps
        return vec_join(deps, self._own_vector(self.clock), self.wm)

    def _add(self, txn: Txn) -> None:
        if self._spec_deps is not None:
            try:
                self._spec_deps = vec_join(self._spec_deps, txn.deps, self.wm)
            except DependencyInDoubt:
                self._spec_deps = None
        self.txns.append(txn)
        self.batch.append(txn)
        self.batch_ops += len(txn.ops)
        self.tracker.installed(txn.keys, txn.has_flush)

    def _active_expire(self) -> None:
        keys = self.ks.expired_keys(self.wall_ms, self.cfg.active_expire_keys_per_tick)
        if not keys:
            return
        if self.may_expire is not None:
            keys = [key for key in keys if self.may_expire(key)]
            if not keys:
                return
        ctx = self.new_context()
        try:
            for key in keys:
                ctx._get(key)  # an internal key; reads as expired: the context deletes it through an op
        except KeyLocked:
            self._undo(ctx)
            return
        if self.expired_ops is not None:
            self.expired_ops.extend(ctx.ops)
        self.install(ctx)

    # -- batching into Paxos -----------------------------------------------------------------------
    def may_propose(self) -> bool:
        if not self.serving:
            return False
        return bool(self.batch or self.barriers) or (
            not self.inflight and self._current_marker() > self.last_marker
        )

    def after_replication(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once everything installed so far is in a chosen slot."""
        self.barriers.append(callback)

    def _current_marker(self) -> int:
        """Every version at or below this is installed (in a batch) or was never handed out."""
        pending = [t.version for t in self.batch]
        if self.granted:
            pending.append(min(self.granted.values()))
        return (min(pending) - 1) if pending else self.clock

    def maybe_propose(self) -> None:
        # An idle shard must still move its watermark (a clock handed to a
        # transaction that then aborted, a new epoch): an empty batch carries
        # the new marker. Without it one idle shard stalls every reply.
        while self.may_propose() and (
            len(self.inflight) < self.cfg.max_inflight_batches
            or len(self.batch) >= self.cfg.max_batch_txns
            or self.batch_ops >= self.cfg.max_batch_ops
        ):
            # A slot holds at most max_batch_txns transactions and (unless one
            # transaction is bigger) max_batch_ops ops, so no replica spends
            # too long encoding, decoding or applying one slot.
            take, ops = 0, 0
            for t in self.batch:
                if take and (take >= self.cfg.max_batch_txns or ops + len(t.ops) > self.cfg.max_batch_ops):
                    break
                take += 1
                ops += len(t.ops)
            seq = self.batch_seq + 1
            value, marker = self._encode_first(take, seq)
            while len(value) > self.cfg.max_txn_bytes and take > 1:
                # Bytes bound a slot too (one peer frame, one stall): each
                # transaction fits max_txn_bytes (twice, with its record), many
                # together need not. Rare: big slots only.
                take //= 2
                value, marker = self._encode_first(take, seq)
            batch = self.batch[:take]
            rest = self.batch[take:]
            slot = self.paxos.propose(value)
            if slot is None:
                return  # no longer the leader; _on_deposed undoes the batch
            self.batch_seq = seq
            self.last_marker = max(self.last_marker, marker)
            if self.barriers:
                self.inflight_barriers[slot] = self.barriers
                self.barriers = []
            for t in batch:
                t.slot = slot
            self.batch = rest
            self.batch_ops = sum(len(t.ops) for t in rest)
            self.inflight[slot] = (marker, batch, seq)

    def _encode_first(self, take: int, seq: int) -> tuple[bytes, int]:
        """The slot value holding the first ``take`` batched transactions, and its marker."""
        rest = self.batch[take:]
        # Every version at or below the marker is in this slot or an
        # earlier one: the only versions not yet in a batch are clocks
        # handed to cross-shard transactions still being certified, and
        # the transactions left for the next batch.
        pending = [t.version for t in rest]
        if self.granted:
            pending.append(min(self.granted.values()))
        marker = (min(pending) - 1) if pending else self.clock
        own = self.shard
        txns = [
            [t.version, None if _only_own(t.deps, own) else list(t.deps), t.ops, t.record]
            for t in self.batch[:take]
        ]
        return encode_batch(self.epoch, marker, txns, seq), marker

    # -- checkpoints and snapshots ----------------------------------------------------------------------
    def marks(self) -> list:
        """What a checkpoint or snapshot keeps of this shard's epochs (see _read_marks)."""
        _epoch, _w, closed, closed_below = self.wm.snapshot(self.shard)
        return [self.chain.to_list(), closed, closed_below, self.coord_records.evicted_epoch,
                self.members.to_list()]

    def checkpoint(self) -> Checkpoint | None:
        ckpt = self.tracker.take(self.applied_slot, self.applied_clock, self.marks())
        if ckpt is not None:
            ckpt.records_put, ckpt.records_del = self.coord_records.take_changes()
        return ckpt

    def install_snapshot(
        self, applied_slot: int, clock: int, keyspace: Keyspace, marks: list | None = None, records: list | None = None
    ) -> bool:
        if applied_slot <= self.applied_slot or self.paxos.role == LEADER:
            return False
        self.ks = keyspace
        self.tracker = CheckpointTracker(keyspace)
        self.applied_slot = applied_slot
        self.applied_clock = clock
        self.clock = max(self.clock, clock)
        self.unresolved = deque(item for item in self.unresolved if item[0] > applied_slot)
        # The snapshot's epochs and records: the slots it covers will never be read here.
        chain, closed, closed_below, evicted_epoch = _read_marks(marks, applied_slot)
        self.wm.observe(self.shard, chain.epoch, chain.marker, closed, closed_below)
        if chain.slot > self.chain.slot:
            self.chain = chain
        self.coord_records.merge(CoordRecords.from_encoded(records or [], evicted_epoch))
        self.on_marks_changed(force=True)
        members = _read_members(marks)
        if members is not None:
            self.members = members
        self.members_pending = {s: m for s, m in self.members_pending.items() if s > applied_slot}
        self.paxos.snapshot_installed(applied_slot, members)
        return True

    def change_membership(self, new: Membership) -> str | None:
        """Propose a membership change (membership.py); returns why not, or None."""
        if not self.serving:
            return "not the serving leader"
        return self.paxos.propose_membership(new)

    def status(self) -> dict[str, Any]:
        return replica_status(self)


def _only_own(deps: tuple[int, ...], own: int) -> bool:
    for i, d in enumerate(deps):
        if i != own and d:
            return False
    return True


def first_request_id(rng: random.Random) -> int:
    """Where a driver starts numbering requests: a fresh incarnation in the high bits."""
    return rng.getrandbits(31) << 32
