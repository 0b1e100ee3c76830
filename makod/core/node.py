"""The whole of one makod's decisions: routing, forwarding, releasing replies.

A node is a replica of one shard (``self.replica``) and, while it leads that
shard, a coordinator of cross-shard transactions (``self.coord``). A client's
request is routed by the shards its keys live on:

* one shard: run at that shard's leader as a local transaction (forwarded
  there if that is not us), with no cross-shard cost;
* several shards: coordinated here if we lead our shard, else by our leader;
* a stored procedure (keys unknown up front): run here on the fast path, and
  if it reaches another shard's key, undone and handed to the coordinator;
* a whole-keyspace command (DBSIZE, KEYS, SCAN, ...): run on every shard and
  merged as the command table says.

Replies are released only when the vector watermark covers the transaction
(release.py); rolled-back transactions answer TRYAGAIN. Shard leaders gossip
their watermarks and leadership to every node.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from makod.core.coordinator import Coordinator
from makod.core.fast_path import fast_read
from makod.core.forwarding import Forwarding, PendingForward, forward_reply_limit
from makod.core.node_participant import Participation
from makod.core.routing import Routing
from makod.core.luigi import LuigiCoordinator
from makod.core.luigi_leader import LuigiLeader
from makod.core.luigi_messages import LuigiAgreed, LuigiDispatch, LuigiProposed, LuigiReady
from makod.core.entries import pack_value
from makod.core.messages import Accept, Message
from makod.core.paxos import LEADER, PaxosConfig, Ready
from makod.core.release import ReleaseQueue
from makod.core.replica import ReplicaConfig, ReplicaCore, first_request_id
from makod.core.requests import ForwardReply, ForwardRequest
from makod.core.slot_table import TABLE_KEY
from makod.core.slots import SlotMap
from makod.core.txn_messages import (
    TxnAbort,
    TxnAborted,
    TxnDecision,
    TxnInstall,
    TxnInstalled,
    TxnPrepare,
    TxnPrepared,
    TxnQuery,
    TxnRead,
    TxnReadReply,
    TxnValidate,
    TxnValidated,
    Watermark,
)
from makod.core.watermark import COVERED, ROLLED_BACK, WatermarkTable
from makod.storage.base import LoadedState
from makod.kv import errors
from makod.kv.notify import FLUSH_EVENT, tracking_events
from makod.kv.replies import ErrorReply

LED_BALLOTS_MAX = 1024
GOSSIP_EVERY_MS = 20.0


@dataclass
class NodeOutput:
    paxos: Ready
    messages: list[tuple[int, Message]]
    results: list[tuple[int, Any, bool]] = field(default_factory=list)  # (rid, result, released)
    releases: list[int] = field(default_factory=list)
    events: list[tuple] = field(default_factory=list)  # keyspace notifications to publish (kv/notify.py)

    def empty(self) -> bool:
        return self.paxos.empty() and not (self.messages or self.results or self.releases or self.events)

    def must_persist(self) -> bool:
        """True when a promise or log entries must be synced before the held messages go out."""
        return self.paxos.promised is not None or bool(self.paxos.entries)

    def take_early_messages(self) -> list[tuple[int, Message]]:
        """The messages that may go before this output is persisted: a leader's
        Accepts (it counts its own vote only once its copy is synced, in
        advance()). Everything else stays held until the sync."""
        early = [(d, m) for d, m in self.messages if type(m) is Accept]
        if early:
            self.messages = [(d, m) for d, m in self.messages if type(m) is not Accept]
        return early


class NodeCore(Forwarding, Participation, Routing):
    def __init__(
        self,
        node_id: int,
        shard: int,
        members: list[tuple[list[int], list[int]]],
        slot_ranges: list[list[tuple[int, int]]],
        *,
        rng: random.Random,
        loaded: LoadedState,
        handlers: Callable[[list[bytes]], Any],
        matcher_factory: Callable[[bytes], Callable[[bytes], bool]] | None = None,
        config: ReplicaConfig | None = None,
        paxos_config: PaxosConfig | None = None,
        preferred_leader: int | None = None,
        initial_members: tuple[list[int], list[int]] | None = None,
    ) -> None:
        # members: the cluster's topology (whom to reach); initial_members:
        # this shard's membership before its log changed it (default: the
        # topology's), which a replica with no checkpoint starts from.
        self.id = node_id
        self.shard = shard
        self.num_shards = len(members)
        self.members = members
        self.cfg = config or ReplicaConfig()
        self.rng = rng
        self.lookup = handlers
        self.slots = SlotMap(slot_ranges, shard)
        self.wm = WatermarkTable(self.num_shards)
        voters, learners = initial_members or members[shard]
        self.replica = ReplicaCore(
            shard, node_id, self.num_shards, voters, learners,
            rng=random.Random(rng.random()), wm=self.wm, config=self.cfg, paxos_config=paxos_config,
            keyspace=loaded.keyspace, applied_slot=loaded.applied_slot, clock=loaded.clock,
            promised=loaded.promised, log=loaded.log, marks=loaded.marks, records=loaded.records,
            handlers=handlers, matcher_factory=matcher_factory, owns=self.owns,
            range_local=self._range_local,
            preferred_leader=preferred_leader,
        )
        if self.num_shards > 1:
            self.slots.attach(lambda: self.replica.ks.data.get(TABLE_KEY))
        self.paxos = self.replica.paxos
        self.all_nodes = sorted(n for v, l in members for n in v + l)
        self.former_shards: dict[int, int] = {}  # removed replicas' shards (set_members)
        self._zero = tuple(0 for _ in members)
        self.leaders: dict[int, int] = {}
        self.leader_ballots: dict[int, int] = {}  # shard -> the ballot its leader gossiped
        self.leader_heard: dict[int, float] = {}
        self.releases = ReleaseQueue(shard, self.cfg.max_held_replies)
        self.held: dict[Any, Any] = {}  # token -> result waiting for release
        # Client-side caching wants the keys every write changes (finish(),
        # and the active expiry's deletes): set_track_writes.
        self.track_writes = False
        self.held_events: dict[Any, list] = {}  # token -> its keyspace notifications, published on release
        self._events: list[tuple] = []  # keyspace notifications released, for the host to publish
        self.forwarded: dict[int, PendingForward] = {}
        self.forwards_seen: dict[tuple[int, int], tuple[int, set[int]]] = {}
        # Forwarded requests run only under the ballot they were sent to. A
        # ballot this process led is in led_ballots (its dedup memory covers
        # it); one an earlier incarnation may have led is at most boot_promised.
        self.boot_promised = loaded.promised
        self.led_ballots: set[int] = set()
        self.next_internal = first_request_id(random.Random(rng.random()))
        self.waiting: deque[tuple[Any, Any, float]] = deque()  # no leader to run it yet
        self._since: float | None = None  # see _route
        # Hit a locked key: (token, request, since, trap_remote), retried when a lock goes.
        self.blocked: deque[tuple[Any, Any, float, bool]] = deque()
        self.blocked_slots_version = 0  # the slot map they were routed by (_retry_blocked)
        self.was_leader = False
        self.mono_ms = 0.0
        self.gossip_due = 0.0
        self.gossiped: tuple | None = None
        self._settled_wm = -1  # the watermark version the last ready() acted on
        self.paxos.transfer_gate = self._drained
        self._messages: list[tuple[int, Message]] = []
        self._results: list[tuple[int, Any, bool]] = []
        self._releases: list[int] = []
        # The protocol is chosen once, here: each is one object behind the
        # coordinator's interface (Luigi adds its per-leader order).
        if self.cfg.protocol == "luigi":
            self.coord: Coordinator = LuigiCoordinator(self)
            self.luigi: LuigiLeader | None = LuigiLeader(self)
        else:
            self.coord = Coordinator(self)
            self.luigi = None
            if self.num_shards > 1:
                # Luigi's per-leader order would need its own handover of a
                # slot's timestamps: slots move only under the other protocols.
                self.replica.slot_map = self.slots

    # -- convenience ---------------------------------------------------------------------
    @property
    def ks(self):
        return self.replica.ks

    @property
    def tracker(self):
        return self.replica.tracker

    @property
    def applied_slot(self) -> int:
        return self.replica.applied_slot

    def owns(self, key: bytes) -> bool:
        return self.slots.shard_of(key) == self.shard

    def _range_local(self, start: bytes, end: bytes | None) -> bool:
        return self.slots.range_shards(start, end) == [self.shard]

    def send(self, node: int, msg: Message) -> None:
        self._messages.append((node, msg))

    def leader_of(self, shard: int) -> int | None:
        if shard == self.shard:
            return self.paxos.known_leader()
        return self.leaders.get(shard)

    def leader_ballot(self, shard: int) -> int:
        """The ballot under which we believe ``shard``'s leader leads (0: unknown)."""
        if shard == self.shard:
            return self.paxos.promised if self.paxos.known_leader() is not None else 0
        return self.leader_ballots.get(shard, 0)

    # -- inputs -----------------------------------------------------------------------------
    def observe_time(self, mono_ms: float, wall_ms: int) -> None:
        if mono_ms > self.mono_ms:
            self.mono_ms = mono_ms
        self.replica.observe_time(mono_ms, wall_ms)

    def tick(self, mono_ms: float, wall_ms: int) -> None:
        self.observe_time(mono_ms, wall_ms)
        self.replica.tick(mono_ms, wall_ms)
        self._after_role()
        self._expire_leaders()
        self._gossip()
        self.coord.tick()
        if self.luigi is not None:
            self.luigi.tick()
        self._retry_blocked(force=True)
        self._drain_waiting()
        self._expire_forwards()

    def wake(self, mono_ms: float, wall_ms: int) -> None:
        """The host woke us when asked (wakeup_in_ms): start what came due."""
        self.observe_time(mono_ms, wall_ms)
        if self.luigi is not None:
            self.luigi.poll()

    def wakeup_in_ms(self) -> float | None:
        """Wake us (``wake``) this soon, before the next tick; None: no need."""
        return self.luigi.due_in_ms() if self.luigi is not None else None

    def step(self, msg: Message) -> None:
        if getattr(msg, "shard", 0) >= self.num_shards:
            return  # from a shard added since our topology was read: we learn of it on reload
        t = type(msg)
        if t is Watermark:
            self._on_watermark(msg)  # type: ignore[arg-type]
        elif t is ForwardRequest:
            self._on_forward_request(msg)  # type: ignore[arg-type]
        elif t is ForwardReply:
            self._on_forward_reply(msg)  # type: ignore[arg-type]
        elif t in _PARTICIPANT:
            self._participant(msg)
        elif t in _COORDINATOR:
            self.coord.handle(msg)
        elif t in _LUIGI:
            if self.luigi is not None:  # else a peer with another protocol: ignore it
                if t is LuigiDispatch or t is LuigiAgreed:
                    self.luigi.step(msg)
                else:
                    self.coord.handle(msg)
        else:
            self.replica.step_paxos(msg)
            self._after_role()

    def submit(self, rid: int, request: Any) -> tuple[Any, bool] | None:
        """A client's request. (result, released) when it ran now; else the
        answer comes through ready().results (and later ready().releases)."""
        specs = getattr(request, "specs", None)
        if specs is not None and specs[0].fast_read is not None and not request.multi and not request.watches:
            answer = fast_read(self, request.db, request.commands[0], specs[0])
            if answer is not None:
                return answer
        return self._route(rid, request)

    def fast_read(self, db: int, argv: list[bytes], spec: Any) -> tuple[Any, bool] | None:
        """A one-key read (``spec.fast_read``) answered at once if nothing
        about its key is pending, with no request made; None: submit it."""
        return fast_read(self, db, argv, spec)

    def set_track_writes(self, on: bool) -> None:
        self.track_writes = on
        self.replica.expired_ops = [] if on else None

    def finish(self, token: Any, result: Any, deps: tuple[int, ...], now: bool = False,
               events: list | None = None, ops: list | None = None,
               durable: bool = False) -> tuple[Any, bool] | None:
        """A request ran; release its reply when its version vector is covered.

        ``events``: its keyspace notifications (kv/notify.py), published when
        the reply is released (durable, never to be rolled back), else dropped.
        ``ops``: what it wrote; with ``track_writes`` on, the keys they change
        join the events, for client-side caching's invalidations. Decided
        here, not when the request ran: a node that turns tracking on answers
        its peer only afterwards, and every transaction that finishes later
        is covered (makod/net/tracking_sync.py). ``durable``: wait for that
        even under ack: speculative (CommandSpec.durable_ack)."""
        if ops and self.track_writes:
            events = (events or []) + tracking_events(ops)
        # Only a client request id (an int) can be answered by return value.
        client = now and type(token) is int
        status = self.wm.status(deps) if deps != self._zero else COVERED
        if status != ROLLED_BACK and self.cfg.ack == "speculative" and not durable:
            # ack: speculative answers at install time: faster, but a write
            # acknowledged this way is lost if its shard's leader fails
            # before replicating it (README, "ack").
            status = COVERED
        if status == COVERED:
            if events:
                self._events.extend(events)
            if client:
                return result, True
            self._deliver(token, result, True)
            return None
        if status == ROLLED_BACK:
            error = ErrorReply(errors.TRYAGAIN_ROLLED_BACK.format(self._rolled_back_shard(deps)))
            if client:
                return error, True
            self._deliver(token, error, True)
            return None
        self.releases.add(deps, token)
        self.held[token] = result
        if events:
            self.held_events[token] = events
        if type(token) is int:
            if client:
                return result, False
            self._results.append((token, result, False))
        return None

    def _rolled_back_shard(self, deps: tuple[int, ...]) -> int:
        for shard, c in enumerate(deps):
            if self.wm.component(shard, c) == ROLLED_BACK:
                return shard
        return -1

    def _deliver(self, token: Any, result: Any, released: bool) -> None:
        """Hand a final result to a local client or back to the node that forwarded it."""
        if type(token) is tuple:
            origin, rid = token
            value = pack_value(result)
            limit = forward_reply_limit(self.cfg.max_txn_bytes)
            if len(value) > limit:
                value = pack_value(ErrorReply(errors.REPLY_TOO_LARGE_TO_FORWARD.format(len(value), limit, self.shard)))
            self.send(origin, ForwardReply(self.shard, self.id, rid, value))
        elif callable(token):
            token(result)
        else:
            self._results.append((token, result, released))

    def deliver_error(self, token: Any, text: str) -> None:
        self._deliver(token, ErrorReply(text), True)

    # -- waiting for a leader, or for a lock -----------------------------------------------------
    def _on_watermark(self, msg: Watermark) -> None:
        if msg.serving and msg.shard != self.shard:
            self.leaders[msg.shard] = msg.src
            self.leader_ballots[msg.shard] = msg.ballot
            self.leader_heard[msg.shard] = self.mono_ms
        if self.wm.observe(msg.shard, msg.epoch, msg.w, msg.closed, msg.closed_below):
            self.replica.on_marks_changed()

    def _drained(self) -> bool:
        return self.replica.drained() and not self.coord.active and not len(self.releases)

    def _expire_leaders(self) -> None:
        stale = 3 * self.paxos.cfg.election_timeout_ms
        for shard, heard in list(self.leader_heard.items()):
            if self.mono_ms - heard > stale:
                self.leaders.pop(shard, None)
                self.leader_ballots.pop(shard, None)
                del self.leader_heard[shard]

    def _gossip(self) -> None:
        # A leader gossips as soon as it leads, serving or not: its epoch
        # verdicts are chosen facts, and other shards' recovering leaders may
        # need them before either side can serve.
        replica = self.replica
        if self.paxos.role != LEADER:
            return
        epoch, w, closed, closed_below = self.wm.snapshot(self.shard)
        state = (epoch, w, len(closed), closed_below, replica.serving)
        if state == self.gossiped and self.mono_ms < self.gossip_due:
            return
        self.gossiped = state
        self.gossip_due = self.mono_ms + 5 * GOSSIP_EVERY_MS
        msg = Watermark(self.shard, self.id, epoch, w, closed, closed_below, replica.serving, self.paxos.promised)
        for node in self.all_nodes:
            if node != self.id:
                self.send(node, msg)

    def _after_role(self) -> None:
        is_leader = self.paxos.role == LEADER
        if is_leader and self.paxos.promised not in self.led_ballots:
            self.led_ballots.add(self.paxos.promised)
            if len(self.led_ballots) > LED_BALLOTS_MAX:
                # Forget the oldest; from then on they count as "maybe ran".
                oldest = min(self.led_ballots)
                self.led_ballots.discard(oldest)
                self.boot_promised = max(self.boot_promised, oldest)
        if self.luigi is not None and is_leader != self.was_leader:
            self.luigi.reset()
        if self.was_leader and not is_leader:
            # Deposed: every reply we hold might describe undone writes.
            for token in self.releases.drain():
                self.held.pop(token, None)
                self.held_events.pop(token, None)
                self.deliver_error(token, errors.CLUSTERDOWN_UNKNOWN_OUTCOME.format(self.shard))
            self.coord.deposed()
            for token, request, since, _trap in list(self.blocked):
                self._wait(token, request, since)
            self.blocked.clear()
        self.was_leader = is_leader

    # -- outputs -------------------------------------------------------------------------------------------
    def ready(self) -> NodeOutput:
        replica = self.replica
        if self.luigi is not None:
            self.luigi.drain_loopback()
        replica.maybe_propose()
        pready = self.paxos.ready()
        for slot, value in pready.committed:
            replica.on_chosen(slot, value)
        replica.after_paxos()
        self._after_role()
        self._settled_wm = self.wm.version
        replica.resolve()
        if replica.orphans_to_query:
            # Ask every replica of the coordinator's shard: its leader may be
            # new and not serving yet, and any replica that knows may answer.
            for txn in replica.orphans_to_query:
                shard = self._target_shard(txn[0])
                voters, learners = self.members[shard]
                for node in voters + learners:
                    if node != self.id:
                        self.send(node, TxnQuery(shard, self.id, txn, self.shard))
                    else:
                        outcome, deps, ops = self.coord.decision(txn, self.shard)
                        self._participant(TxnDecision(self.shard, self.id, txn, outcome, deps, ops))
            replica.orphans_to_query.clear()
        self._retry_blocked()
        self._settle()
        self._gossip()
        out = NodeOutput(pready, pready.messages + self._messages, self._results, self._releases)
        self._messages, self._results, self._releases = [], [], []
        if replica.expired_ops:
            self._events.extend(tracking_events(replica.expired_ops))
            replica.expired_ops.clear()
        if replica.newly_serving:
            replica.newly_serving = False
            if self.track_writes:
                self._flush_caches()
        if self._events:
            out.events, self._events = self._events, []
        return out

    def _flush_caches(self) -> None:
        """We start serving as leader. A deposed leader dropped the events of
        the writes it held (and a coordinator those of its transactions):
        they may still be chosen and applied. Now that everything before our
        epoch is applied here, client-side caches drop everything."""
        self._events.append(FLUSH_EVENT)

    def _settle(self) -> None:
        if not len(self.releases):
            return
        released, rolled_back = self.releases.settle(self.wm)
        held_events = self.held_events
        for token in released:
            result = self.held.pop(token)
            if held_events:
                events = held_events.pop(token, None)
                if events:
                    self._events.extend(events)
            if type(token) is tuple or callable(token):
                self._deliver(token, result, True)
            else:
                self._releases.append(token)
        for token in rolled_back:
            self.held.pop(token, None)
            self.held_events.pop(token, None)
            self.deliver_error(token, errors.TRYAGAIN_ROLLED_BACK.format("?"))

    def advance(self, out: NodeOutput) -> None:
        self.paxos.advance(out.paxos)

    @property
    def has_ready(self) -> bool:
        replica = self.replica
        return bool(
            self.paxos.has_ready
            # A watermark moved: held replies may be releasable, followers may apply.
            or self.wm.version != self._settled_wm
            or replica.resolve_more
            or self._messages
            or self._results
            or self._releases
            or self._events
            or (replica.may_propose() and len(replica.inflight) < self.cfg.max_inflight_batches)
            or replica.orphans_to_query
            or (self.luigi is not None and bool(self.luigi.loopback))
        )

    # -- storage hooks ------------------------------------------------------------------------------------
    def checkpoint(self):
        return self.replica.checkpoint()

    def set_members(self, members: list[tuple[list[int], list[int]]]) -> None:
        """The topology changed (a replica added or removed somewhere): whom
        to gossip to and ask. The shard's own voters come from its log."""
        assert len(members) >= self.num_shards, "shards are only ever added"
        # A removed replica may have coordinated transactions still prepared
        # somewhere: orphan queries must still reach its shard.
        now_there = {n for v, l in members for n in v + l}
        for shard, (voters, learners) in enumerate(self.members):
            for node in voters + learners:
                if node not in now_there:
                    self.former_shards[node] = shard
        self.members = members
        self.all_nodes = sorted(n for v, l in members for n in v + l)
        if len(members) > self.num_shards:
            self._add_shards(len(members))

    def _add_shards(self, num_shards: int) -> None:
        """Shards joined the cluster (makoctl cluster add-shard), owning no
        slot until moves give them some. Vectors made before are shorter:
        the clocks they lack are zero (context.vec_join)."""
        was_single = self.num_shards == 1
        self.num_shards = num_shards
        self._zero = (0,) * num_shards
        self.wm.add_shards(num_shards)
        self.slots.add_shards(num_shards)
        self.replica.add_shards(num_shards, self.owns, self._range_local)
        if was_single:
            # What a node of several shards does from the start (__init__).
            self.slots.attach(lambda: self.replica.ks.data.get(TABLE_KEY))
            if self.luigi is None:
                self.replica.slot_map = self.slots

    def install_snapshot(self, applied_slot: int, clock: int, keyspace, marks=None, records=None) -> bool:
        return self.replica.install_snapshot(applied_slot, clock, keyspace, marks, records)

    def status(self) -> dict[str, Any]:
        info = self.replica.status()
        info["shards"] = self.num_shards
        info["leaders"] = {str(s): self.leader_of(s) for s in range(self.num_shards)}
        info["vector_watermark"] = [m.w for m in self.wm.shards]
        info["held_replies"] = len(self.releases)
        info["waiting_requests"] = len(self.waiting)
        info["blocked_requests"] = len(self.blocked)
        info["coordinating"] = len(self.coord.active)
        if self.luigi is not None:
            info.update(self.luigi.stats())
        return info


_PARTICIPANT = (TxnRead, TxnPrepare, TxnValidate, TxnInstall, TxnAbort, TxnQuery, TxnDecision)
_COORDINATOR = (TxnReadReply, TxnPrepared, TxnValidated, TxnInstalled, TxnAborted)
_LUIGI = (LuigiDispatch, LuigiAgreed, LuigiProposed, LuigiReady)
