"""One makod process: wires a node core, through the shared driver
(makod/driver.py), to LMDB, peer sockets and RESP clients.

The driver runs the ready loop; this module supplies its ports (a wall
clock, the peer transport, a disk with two writer threads) and its host
side: client sessions. Peer messages are stepped as they arrive and pumped
once per event-loop iteration, which is the group commit: every client write
that arrived in one iteration goes into one Paxos slot and one fsync.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from functools import partial
import os
import random
import signal
import time
from typing import Any

from makod import __version__, cluster_view, tls
from makod.config import ClusterConfig
from makod.core.messages import Message
from makod.core.paxos import PaxosConfig
from makod.core.replica import ReplicaConfig as CoreConfig
from makod.core.node import NodeCore
from makod.gc_pauses import GcPauses
from makod.driver import Driver, DriverConfig
from makod.net.peers import PeerTransport
from makod.net.resp_server import ClientProtocol
from makod.node_admin import NodeAdmin
from makod.node_members import NodeMembers
from makod.node_tracking import NodeTracking
from makod.node_info import NodeInfo
from makod.storage.lmdb_store import DamagedState, LmdbStore, StoreError
from makod.storage.writer import StorageWriter
from makod import procs
from makod import commands
from makod.net.acl_sync import AclKeeper, AclTable
from makod.net.script_busy import BusyGuard
from makod.kv.scripting import guard as script_guard
from makod import config_overrides, metrics
from makod.net.metrics_http import MetricsServer
from makod.net.pubsub_sync import PubsubHub, PubsubPublish
from makod.kv import errors, glob
from makod.kv.replies import ErrorReply
from resp.blocking import BlockQueue
from resp.cmdstats import CommandStats
from resp.session import Session
from makod.kv.table import TABLE, resolve

log = logging.getLogger("makod")

# Imported for what importing them does: the built-in stored procedures and
# every command are registered (in TABLE).
_REGISTERED = (commands, procs)


# One log write at a time: everything that arrives while it syncs waits and
# goes into the next one, so a write carries more transactions the busier the
# node is (17 SETs per fsync under 50 clients instead of 9 with two in
# flight; BENCHMARKS.md "CPU per operation"). The simulator keeps the
# default of two, which allows every ordering one allows and more.
MAX_PERSIST_GROUPS = 1


class ThreadDisk:
    """The Disk port on real disks: the LMDB store and two writer threads.

    The log writer is on every acknowledgement's path, so it never waits
    behind a checkpoint (lmdb_store.py keeps the two in separate environments).
    Completions hop back to the event loop, then the node flushes its clients.
    """

    def __init__(self, store: LmdbStore, after: Any, on_error: Any = None) -> None:
        self.store = store
        self.after = after
        self.on_error = on_error
        self.log_writer: StorageWriter | None = None
        self.state_writer: StorageWriter | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.log_writer = StorageWriter(loop, self.on_error)
        self.state_writer = StorageWriter(loop, self.on_error)

    def submit_log(self, job: Any, done: Any) -> None:
        self.log_writer.submit(job, partial(self._done, done))

    def submit_state(self, job: Any, done: Any) -> None:
        self.state_writer.submit(job, partial(self._done, done))

    def _done(self, done: Any) -> None:
        done()
        self.after()

    def stream_snapshot(self, produce: Any, each: Any) -> None:
        """Read the snapshot in a thread (LMDB reads are consistent within one
        read transaction); each message hops back to the loop to be sent."""
        loop = asyncio.get_running_loop()

        def stream() -> None:
            try:
                for msg in produce():
                    loop.call_soon_threadsafe(each, msg)
            except Exception:
                log.exception("streaming a snapshot failed")

        threading.Thread(target=stream, name="makod-snapshot", daemon=True).start()

    @property
    def pending(self) -> int:
        return sum(w.pending for w in (self.log_writer, self.state_writer) if w is not None)

    def stop(self) -> None:
        for w in (self.log_writer, self.state_writer):
            if w is not None:
                w.stop()


class WallClock:
    def mono_ms(self) -> float:
        return time.monotonic() * 1000

    def wall_ms(self) -> int:
        return int(time.time() * 1000)


class Node(NodeAdmin, NodeMembers, NodeTracking):
    def __init__(
        self, cfg: ClusterConfig, name: str, data_dir: str, config_path: str = "", *, secret: bytes
    ) -> None:
        self.cfg = cfg
        self.me = cfg.replica(name)
        self.data_dir = data_dir
        self.config_path = config_path
        self.started_mono = time.monotonic()
        self.requirepass = cfg.requirepass
        # ACL users, kept alike on every node (makod/net/acl_sync.py).
        self.acls = AclKeeper(cfg, self.me.node_id, os.path.join(data_dir, name, "acl.users"), self.now_ms,
                              lambda msg: [self.peers.send(r.node_id, msg) for r in cfg.replicas
                                           if r.node_id != self.me.node_id])
        self.acl, self.acl_log, self.aclfile = self.acls.acl, self.acls.log, cfg.aclfile
        if self.acl.users["default"].nopass:
            self.requirepass = None
        self.proto_max_bulk_len = cfg.proto_max_bulk_len
        self.maxclients = cfg.maxclients
        self.databases = cfg.databases
        self.store = LmdbStore(
            os.path.join(data_dir, name, "lmdb"),
            identity={"cluster": cfg.name, "node": name, "shard": self.me.shard},
        )
        loaded = self._load_or_repair(cfg)
        self.core = NodeCore(
            self.me.node_id,
            self.me.shard,
            cfg.topology(),
            [sh.slots for sh in cfg.shards],
            rng=random.Random(os.urandom(8)),
            loaded=loaded,
            handlers=partial(resolve, TABLE),
            matcher_factory=glob.compile_matcher,
            config=CoreConfig(proto_max_bulk_len=cfg.proto_max_bulk_len, max_txn_bytes=cfg.max_txn_bytes, databases=cfg.databases, protocol=cfg.protocol, ack=cfg.ack),
            paxos_config=PaxosConfig(
                election_timeout_ms=cfg.election_timeout_ms, heartbeat_ms=cfg.heartbeat_ms
            ),
            preferred_leader=cfg.preferred_leader(self.me.shard),
            initial_members=cfg.first_members()[self.me.shard],
        )
        for sh in cfg.shards:
            if sh.serving is not None:  # where makoctl cluster reshard last left the slots: hints
                for lo, hi in sh.serving:
                    self.core.slots.learn(lo, hi, sh.id)
        self.last_tick_mono = time.monotonic()
        self.apply_errors_logged = 0
        self.last_idle_check = time.monotonic()
        # TLS contexts are made here, so bad files stop the start (main.py says which).
        self.client_tls = tls.client_server_context(cfg.tls) if cfg.tls else None
        self.tls_server: asyncio.AbstractServer | None = None
        # Jitter only: not the protocol's randomness, and never the global one.
        self.link_rng = random.Random(os.urandom(8))
        self.peers = PeerTransport(
            self.me.node_id,
            self.me.host,  # only the address the config gives this replica
            self.me.peer_port,
            {r.node_id: (r.host, r.peer_port) for r in cfg.replicas},
            self._on_peer_message,
            secret=secret,
            num_shards=len(cfg.shards),
            ssl_contexts=(tls.peer_server_context(cfg.tls), tls.peer_client_context(cfg.tls)) if cfg.tls else None,
            reserved_ports={p for r in cfg.replicas for p in (r.resp_port, r.peer_port, r.tls_port) if p},
            delay_ms=self._delay_to if cfg.links.has_delay() else None,
        )
        # Set while a durable write keeps failing (disk full, I/O error): write
        # commands get MISCONF here, reads go on; cleared once writes pass.
        self.disk_error: str | None = None
        self.disk = ThreadDisk(self.store, self._flush_clients, self._on_disk_error)
        self.driver = Driver(
            self.core, WallClock(), self.peers, self.disk, self,
            DriverConfig(checkpoint_interval_ms=cfg.checkpoint_interval_ms, log_retain_slots=cfg.log_retain_slots,
                         log_retain_bytes=cfg.log_retain_bytes, max_persist_groups=MAX_PERSIST_GROUPS),
            compacted_upto=min(loaded.log, default=loaded.applied_slot + 1) - 1, rng=random.Random(os.urandom(8)),
        )
        self.clients: dict[int, ClientProtocol] = {}
        self.gc_pauses = GcPauses()
        self.gc_pauses.install()
        self.peer_messages_received = 0
        self.next_client_id = 0
        self.pending: dict[int, tuple[Session, int]] = {}
        self.dirty: set[ClientProtocol] = set()
        self.pump_scheduled = False
        self.wakeup_due: float | None = None  # monotonic seconds (schedule_wakeup)
        # INFO commandstats/errorstats/latencystats, SLOWLOG, LATENCY.
        self.command_stats = CommandStats(time.time, time.perf_counter_ns)
        self.stats = NodeInfo(self)
        self.notify_flags = ""
        self.set_notify_flags(cfg.notify_keyspace_events)
        # Scripts past busy-reply-threshold: -BUSY for others, SCRIPT KILL.
        script_guard.install(BusyGuard(self))
        # Pub/sub: this node's subscribers; publishes reach every node (makod/net/pubsub_sync.py).
        self.pubsub = PubsubHub(
            self.me.node_id, self.me.shard, [[r.node_id for r in sh.replicas] for sh in cfg.shards],
            self.peers.send, self.wake, self.core.slots.client_shard_of_slot, self._shard_address, glob.compile_matcher,
        )
        # Client-side caching (resp/tracking.py): this node's tracking
        # clients, and hearing of the keys that change on other nodes.
        self.setup_tracking()
        # What CONFIG REWRITE kept of this node's live settings.
        applied = config_overrides.load(self.stats, config_overrides.path_of(self.data_dir, self.me.name))
        if applied:
            log.info("applied %s from %s", ", ".join(applied), config_overrides.FILE_NAME)
        # GET /metrics for Prometheus (makod/metrics.py), when the config gives a port.
        self.metrics_server = MetricsServer(lambda: metrics.render(self))
        # CLIENT PAUSE: [until ms, "all" or "write"] while one holds this node's clients.
        self.client_pause: list | None = None
        # MONITOR clients of this node (resp/monitor.py).
        self.monitors: set[Session] = set()
        # Clients waiting in BLPOP & co, served in the order they blocked.
        self.block_queue = BlockQueue(self.now_ms, self.call_later)
        self.server: asyncio.AbstractServer | None = None
        self.stopping: asyncio.Event | None = None

    def _load_or_repair(self, cfg: ClusterConfig):
        """Load the replica's data; damaged parts that peers can replace are set
        aside (never served), anything else stops the start with StoreError."""
        try:
            loaded = self.store.load()
        except DamagedState as exc:
            shard = cfg.shards[self.me.shard]
            if sum(1 for r in shard.replicas if r.voter) < 2:
                raise StoreError(f"{exc}; this shard has no other replica to rebuild it from. "
                                 "See 'Repairing a replica' in docs/OPERATIONS.md") from None
            aside = self.store.quarantine_state()
            log.error("%s: moved the damaged state to %s; rebuilding it from the shard's other replicas", exc, aside)
            loaded = self.store.load()
        if loaded.damaged_log_slots:
            cut = max(loaded.damaged_log_slots)
            log.error("log entries of slots %s failed their checksums; they were applied and checkpointed, "
                      "so the log is compacted through slot %d", loaded.damaged_log_slots[:10], cut)
            for slot in [s for s in loaded.log if s <= cut]:
                del loaded.log[slot]
            self.store.compact(cut)
        return loaded

    # Figures the driver keeps (INFO, MAKO STATUS).
    @property
    def checkpoints(self) -> int:
        return self.driver.checkpoints

    # -- lifecycle -----------------------------------------------------------------------
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        self.disk.start(loop)
        await self.peers.start()
        self.server = await loop.create_server(
            lambda: ClientProtocol(self), self.cfg.bind, self.me.resp_port, reuse_address=True
        )
        if self.client_tls is not None:
            self.tls_server = await loop.create_server(
                lambda: ClientProtocol(self), self.cfg.bind, self.me.tls_port, reuse_address=True,
                ssl=self.client_tls, ssl_handshake_timeout=10,
            )
            log.info("serving RESP over TLS on %s:%d", self.cfg.bind, self.me.tls_port)
        if self.me.metrics_port is not None:
            await self.metrics_server.start(self.cfg.bind, self.me.metrics_port)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        self._tick()
        log.info("makod %s (%s) serving RESP on %s:%d", self.me.name, __version__, self.cfg.bind, self.me.resp_port)
        await self.stopping.wait()
        await self.shutdown()

    async def shutdown(self) -> None:
        for server in (self.server, self.tls_server):
            if server is not None:
                server.close()
        await self.metrics_server.close()
        driver = self.driver
        driver.pump()
        while self.disk.pending:
            await asyncio.sleep(0.01)
        if driver.checkpoint_parts is not None:
            driver.maybe_checkpoint(force=True)  # finish the one in progress
        driver.maybe_checkpoint(force=True)
        while self.disk.pending:
            await asyncio.sleep(0.01)
        self.disk.stop()
        await self.peers.close()
        self.store.close()
        log.info("makod %s stopped", self.me.name)

    # -- time ---------------------------------------------------------------------------
    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def time_us(self) -> int:
        return time.time_ns() // 1000

    def _tick(self) -> None:
        started = time.monotonic()
        gap_ms = (started - self.last_tick_mono) * 1000
        if gap_ms > 250:
            log.warning("event loop stalled for %.0f ms (ticks are every %d ms)", gap_ms, self.cfg.tick_ms)
        self.last_tick_mono = started
        self.driver.tick()
        self.peers.flush()
        self.gc_pauses.tick()
        self.tracking_peers.tick(started * 1000)
        self._flush_clients()
        self.acls.tick(started)
        if started - self.last_idle_check >= 1.0:
            self.last_idle_check = started
            self._check_clients(started)
        replica = self.core.replica
        if replica.apply_errors != self.apply_errors_logged:
            self.apply_errors_logged = replica.apply_errors
            log.error("could not apply a chosen entry (%d so far; skipped on every replica alike): %s",
                      replica.apply_errors, replica.last_apply_error)
        asyncio.get_running_loop().call_later(self.cfg.tick_ms / 1000, self._tick)

    # What the ACL commands call (SessionHost).
    def acl_changed(self) -> None:
        self.acls.changed()

    def acl_save(self) -> None:
        self.acls.save()

    def acl_load(self) -> None:
        self.acls.load()

    def _on_disk_error(self, text: str | None) -> None:
        self.disk_error = text

    def _check_clients(self, now: float) -> None:
        """Once a second: Redis's `timeout` (a client idle that long is closed;
        one waiting on a reply or with replies still to send is not idle), and
        the soft output limit of clients whose replies are not being read."""
        timeout = self.cfg.timeout
        for proto in list(self.clients.values()):
            transport = proto.transport
            if transport is None or transport.is_closing():
                continue
            if proto.writing_paused:
                proto.over_output_limit(transport.get_write_buffer_size())
            elif timeout and proto.idle_for(now) > timeout:
                self.stats.limit_disconnections["timeout"] += 1
                transport.close()

    def _delay_to(self, peer: int) -> float:
        """One message's emulated WAN delay to ``peer`` (the config's ``links``);
        the transport keeps each link's messages in order despite jitter."""
        return self.cfg.links.delay_ms(self.me.datacenter, self.cfg.by_id(peer).datacenter, self.link_rng)

    # -- the driver's host side ---------------------------------------------------------------
    def schedule_pump(self) -> None:
        if not self.pump_scheduled:
            self.pump_scheduled = True
            asyncio.get_running_loop().call_soon(self._pump)

    def schedule_wakeup(self, delay_ms: float) -> None:
        if delay_ms >= self.cfg.tick_ms:
            return  # the next tick comes first
        due = time.monotonic() + delay_ms / 1000
        if self.wakeup_due is not None and self.wakeup_due <= due:
            return
        self.wakeup_due = due
        asyncio.get_running_loop().call_later(delay_ms / 1000, self._wake)

    def _wake(self) -> None:
        if self.wakeup_due is not None and time.monotonic() + 0.0005 < self.wakeup_due:
            return  # a sooner wake-up was asked for and ran: this is a stale timer
        self.wakeup_due = None
        self.driver.wake()
        self._flush_clients()

    def _pump(self) -> None:
        self.pump_scheduled = False
        self.driver.pump()
        self.peers.flush()
        self._flush_clients()

    def on_result(self, rid: int, result: Any, released: bool) -> None:
        entry = self.pending.get(rid)
        if entry is None:
            return
        if released:
            del self.pending[rid]
        entry[0].on_result(entry[1], result, released)
        self._mark(entry[0])

    def on_release(self, rid: int) -> None:
        entry = self.pending.pop(rid, None)
        if entry is not None:
            entry[0].on_release(entry[1])
            self._mark(entry[0])

    def node_name(self, node_id: int) -> str:
        """A replica's name for log lines (ids mean nothing to an operator)."""
        try:
            return self.cfg.by_id(node_id).name
        except KeyError:  # ids are stable keys, not list positions
            return f"node {node_id}"

    def on_event(self, kind: str, detail: str) -> None:
        log.info("%s: %s", kind, detail, extra={"kind": kind})

    def on_chosen(self, slot: int, value: bytes) -> None:
        pass

    def _mark(self, session: Session) -> None:
        proto = self.clients.get(session.id)
        if proto is not None:
            self.dirty.add(proto)

    def _flush_clients(self) -> None:
        if not self.dirty:
            return
        dirty, self.dirty = self.dirty, set()
        for proto in dirty:
            proto.flush()

    def _on_peer_message(self, msg: Message) -> None:
        self.peer_messages_received += 1  # CLUSTER INFO's cluster_stats_messages_received
        if type(msg) is AclTable:
            self.acls.on_table(msg)
            return
        if type(msg) is PubsubPublish:
            self.pubsub.on_message(msg)
            return
        if self.on_tracking_message(msg):
            return
        self.driver.receive(msg)
        self.schedule_pump()

    # -- keyspace notifications (kv/notify.py) --------------------------------------------------------
    def set_notify_flags(self, flags: str) -> None:
        """notify-keyspace-events: this node's, as in Redis Cluster (set it on
        every node: a transaction raises events where it runs, at its leader)."""
        self.notify_flags = flags
        self.core.replica.notify = bool(flags)

    def on_keyspace_events(self, events: list[tuple]) -> None:
        """Publish released transactions' events to every node's subscribers,
        and invalidate what client-side caches hold of the keys they changed."""
        if self.core.track_writes:
            self.invalidate_changed(events)
        flags = self.notify_flags
        if not flags:
            return
        keyspace, keyevent = "K" in flags, "E" in flags
        publish = self.pubsub.publish_local_and_broadcast
        for db, cls, event, key in events:
            if cls not in flags:
                continue
            if keyspace:
                publish(b"__keyspace@%d__:%s" % (db, key), event.encode())
            if keyevent:
                publish(b"__keyevent@%d__:%s" % (db, event.encode()), key)

    # -- what sessions call (SessionHost) ------------------------------------------------------
    def fast_read(self, db: int, argv: list[bytes], spec: Any) -> tuple[Any, bool] | None:
        """A one-key read answered at once (Driver.fast_read); None: submit it."""
        try:
            return self.driver.fast_read(db, argv, spec)
        except Exception:  # a handler bug: the full path answers it (and says so)
            log.exception("internal error in a fast read of %r", argv[:2])
            return None

    def submit(self, session: Session, token: int, request: Any) -> tuple[Any, bool] | None:
        try:
            rid, answer = self.driver.submit(request)
        except Exception as exc:  # a handler bug: answer the client, keep serving
            log.exception("internal error running %r", request)
            return (ErrorReply(errors.INTERNAL_ERROR.format(type(exc).__name__, exc)), True)
        if answer is None or not answer[1]:
            self.pending[rid] = (session, token)
        if self.core.has_ready:
            self.schedule_pump()
        return answer

    def call_later(self, delay_ms: float, session: Session | None, fn: Any) -> None:
        """Run ``fn`` after ``delay_ms``: a session's timer (skipped once it
        closed), or with ``session=None`` a round of the blocked clients'
        queue (resp/blocking.py), which returns the sessions it touched."""

        def run() -> None:
            if session is not None and session.closing:
                return
            touched = fn()
            if session is not None:
                self._mark(session)
            for s in touched or ():
                self._mark(s)
            if self.core.has_ready:
                self.schedule_pump()
            self._flush_clients()

        asyncio.get_running_loop().call_later(delay_ms / 1000, run)

    def sessions(self) -> list[Session]:
        return [proto.session for proto in self.clients.values()]

    def wake(self, sessions: list[Session]) -> None:
        for s in sessions:
            self._mark(s)
        self.schedule_pump()

    def info(self, sections: list[str]) -> str:
        return self.stats.render(sections)

    def config_get(self, patterns: list[str]) -> list[tuple[str, str]]:
        return self.stats.config_get(patterns)

    def config_set(self, pairs: list[tuple[str, str]]) -> None:
        self.stats.config_set(pairs)

    def reset_stats(self) -> None:
        self.stats.reset()

    def config_rewrite(self) -> None:
        config_overrides.rewrite(self.stats, config_overrides.path_of(self.data_dir, self.me.name))

    # What the CLUSTER commands call (resp/commands/cluster.py; makod/cluster_view.py).
    def cluster_topology(self, tls: bool) -> Any:
        return cluster_view.topology(self, tls)

    def _shard_address(self, shard: int, tls: bool) -> str:
        """host:port of a shard's leader (its stand-in master when none is
        known), as CLUSTER SLOTS shows it: where MOVED sends a client."""
        leader = self.core.leader_of(shard)
        if leader is None or self.cfg.find(leader) is None:
            leader = self.cfg.preferred_leader(shard)
        if leader is None:
            leader = next(r.node_id for r in self.cfg.shards[shard].replicas if r.voter)
        rep = self.cfg.by_id(leader)
        return f"{rep.host}:{rep.tls_port if tls and rep.tls_port else rep.resp_port}"

    def count_slot_keys(self, db: int, slot: int) -> int:
        return cluster_view.count_slot_keys(self, db, slot)

    def slot_keys(self, db: int, slot: int, limit: int) -> list[bytes]:
        return cluster_view.slot_keys(self, db, slot, limit)
