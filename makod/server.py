"""One makod process: wires a replica core to LMDB, peers and RESP clients.

The core decides; this driver only does what it is told, in the order the
rules require: persist (with sync) what a ready batch asks, THEN send its
messages, then deliver results and releases to client sessions. Inputs are
batched per event-loop iteration, which is the group commit: every client
write that arrived in one iteration goes into one Paxos slot and one fsync.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections import deque
from functools import partial
import os
import random
import signal
import time
from typing import Any

from makod import __version__
from makod.config import ClusterConfig
from makod.core.messages import Message, SnapshotChunk
from makod.core.snapshots import SNAPSHOT_CHUNK_BYTES, SnapshotReceiver, snapshot_messages
from makod.core.paxos import PaxosConfig
from makod.core.replica import ReplicaConfig as CoreConfig
from makod.core.node import NodeCore
from makod.core.replica import first_request_id
from makod.net.peers import PeerTransport
from makod.net.resp_server import ClientProtocol
from makod.node_info import NodeInfo
from makod.storage.base import encode_record
from makod.storage.lmdb_store import LmdbStore
from makod.storage.writer import StorageWriter
import makod.procs  # noqa: F401  (registers the built-in stored procedures)
import resp.commands  # noqa: F401  (registers every command in TABLE)
from resp import glob
from resp.errors import CommandError
from resp.replies import ErrorReply
from resp.session import Session
from resp.table import TABLE, resolve

log = logging.getLogger("makod")


class Node:
    def __init__(self, cfg: ClusterConfig, name: str, data_dir: str, config_path: str = "") -> None:
        self.cfg = cfg
        self.me = cfg.replica(name)
        self.data_dir = data_dir
        self.config_path = config_path
        self.started_mono = time.monotonic()
        self.requirepass = cfg.requirepass
        self.proto_max_bulk_len = cfg.proto_max_bulk_len
        self.maxclients = cfg.maxclients
        self.store = LmdbStore(
            os.path.join(data_dir, name, "lmdb"),
            identity={"cluster": cfg.name, "node": name, "shard": self.me.shard},
        )
        loaded = self.store.load()
        self.core = NodeCore(
            self.me.node_id,
            self.me.shard,
            [([r.node_id for r in sh.replicas if r.voter], [r.node_id for r in sh.replicas if not r.voter])
             for sh in cfg.shards],
            [sh.slots for sh in cfg.shards],
            rng=random.Random(os.urandom(8)),
            loaded=loaded,
            handlers=partial(resolve, TABLE),
            matcher_factory=glob.compile_matcher,
            config=CoreConfig(proto_max_bulk_len=cfg.proto_max_bulk_len, protocol=cfg.protocol, ack=cfg.ack),
            paxos_config=PaxosConfig(
                election_timeout_ms=cfg.election_timeout_ms, heartbeat_ms=cfg.heartbeat_ms
            ),
            preferred_leader=cfg.preferred_leader(self.me.shard),
        )
        self.compacted_upto = loaded.applied_slot
        self.last_checkpoint_mono = time.monotonic()
        self.ckpt_parts: tuple | None = None  # a checkpoint being written in parts
        self.last_tick_mono = time.monotonic()
        self.last_role: tuple | None = None
        self.checkpoints = 0
        self.peers = PeerTransport(
            self.me.node_id,
            cfg.bind if self.me.host in ("127.0.0.1", "localhost") else "0.0.0.0",
            self.me.peer_port,
            {r.node_id: (r.host, r.peer_port) for r in cfg.replicas},
            self._on_peer_message,
            delay_ms=self._delay_to,
        )
        self.clients: dict[int, ClientProtocol] = {}
        self.next_client_id = 0
        self.next_rid = first_request_id(random.Random(os.urandom(8)))
        self.pending: dict[int, tuple[Session, int]] = {}
        self.dirty: set[ClientProtocol] = set()
        self.pump_scheduled = False
        # Ready batches in the order the core produced them; [output, persisted].
        # Each one's messages, results and advance() happen only once it and
        # every earlier one are durable.
        self.readies: deque[list] = deque()
        self.unsynced: list[list] = []
        self.persisting = 0  # groups handed to the writer, not yet durable
        self.persist_groups = 0
        self.persist_entries = 0
        # Two writer threads: the log (on every acknowledgement's path) never
        # waits behind a checkpoint (lmdb_store.py keeps them in two environments).
        self.writer: StorageWriter | None = None  # the log
        self.state_writer: StorageWriter | None = None
        self.stats = NodeInfo(self)
        self.snapshots = SnapshotReceiver()
        self.server: asyncio.AbstractServer | None = None
        self.stopping: asyncio.Event | None = None

    # -- lifecycle -----------------------------------------------------------------------
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        self.writer = StorageWriter(loop)
        self.state_writer = StorageWriter(loop)
        await self.peers.start()
        self.server = await loop.create_server(
            lambda: ClientProtocol(self), self.cfg.bind, self.me.resp_port, reuse_address=True
        )
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        self._tick()
        log.info("makod %s (%s) serving RESP on %s:%d", self.me.name, __version__, self.cfg.bind, self.me.resp_port)
        await self.stopping.wait()
        await self.shutdown()

    async def shutdown(self) -> None:
        if self.server is not None:
            self.server.close()
        self._pump()
        writers = [w for w in (self.writer, self.state_writer) if w is not None]
        while any(w.pending for w in writers):
            await asyncio.sleep(0.01)
        if self.ckpt_parts is not None:
            self._checkpoint(force=True)  # finish the one in progress
        self._checkpoint(force=True)
        while any(w.pending for w in writers):
            await asyncio.sleep(0.01)
        for w in writers:
            w.stop()
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
        self.core.tick(started * 1000, self.now_ms())
        role = (self.core.paxos.role, self.core.paxos.promised)
        if role != self.last_role:
            log.info("paxos role %s (ballot %d, leader %s) %s", role[0], role[1], self.core.paxos.known_leader(),
                     self.core.paxos.step_down_reason)
            self.core.paxos.step_down_reason = ""
            self.last_role = role
        self._checkpoint()
        self._pump()
        asyncio.get_running_loop().call_later(self.cfg.tick_ms / 1000, self._tick)

    def _delay_to(self, peer: int) -> float:
        other = self.cfg.by_id(peer)
        return self.cfg.inject_delay_ms if other.datacenter != self.me.datacenter else 0.0

    # -- the ready loop ---------------------------------------------------------------------
    def schedule_pump(self) -> None:
        if not self.pump_scheduled:
            self.pump_scheduled = True
            asyncio.get_running_loop().call_soon(self._pump)

    def _pump(self) -> None:
        self.pump_scheduled = False
        core = self.core
        send = self.peers.send
        # Work for at most PUMP_BUDGET_S, then back to the event loop
        # (heartbeats, acknowledgements, clients) and go on next iteration:
        # a follower catching up must still answer its leader promptly.
        deadline = time.monotonic() + PUMP_BUDGET_S
        while core.has_ready:
            if time.monotonic() > deadline:
                self.schedule_pump()
                break
            out = core.ready()
            for peer in out.paxos.snapshot_to:
                self._send_snapshot(peer)
            if out.must_persist():
                for dest, msg in out.take_early_messages():
                    send(dest, msg)
                entry = [out, False]
                self.readies.append(entry)
                self.unsynced.append(entry)
            else:
                self.readies.append([out, True])
        self._start_persist()
        self._complete_readies()

    def _start_persist(self) -> None:
        """Group commit: everything waiting goes to disk in one synced LMDB write.

        At most two groups are handed to the writer: one syncing, the next
        queued behind it, so the writer never waits for this loop to notice
        that a sync ended before it starts the next.
        """
        if self.persisting >= 2 or not self.unsynced:
            return
        batch, self.unsynced = self.unsynced, []
        promised = None
        entries: list = []
        for entry in batch:
            pready = entry[0].paxos
            if pready.promised is not None:
                promised = pready.promised
            entries.extend(pready.entries)
        self.persisting += 1
        self.persist_groups += 1
        self.persist_entries += len(entries)
        self.writer.submit(partial(self.store.persist, promised, entries), partial(self._persisted, batch))

    def _persisted(self, batch: list) -> None:
        for entry in batch:
            entry[1] = True
        self.persisting -= 1
        self._start_persist()
        self._complete_readies()

    def _complete_readies(self) -> None:
        """Send, deliver and advance every durable ready batch at the head, in order."""
        readies = self.readies
        core = self.core
        send = self.peers.send
        while readies and readies[0][1]:
            out = readies.popleft()[0]
            for dest, msg in out.messages:
                send(dest, msg)
            for rid, result, released in out.results:
                self._deliver(rid, result, released)
            for rid in out.releases:
                entry = self.pending.pop(rid, None)
                if entry is not None:
                    entry[0].on_release(entry[1])
                    self._mark(entry[0])
            core.advance(out)
        if core.has_ready:
            self.schedule_pump()
        self._flush_clients()

    def _deliver(self, rid: int, result: Any, released: bool) -> None:
        entry = self.pending.get(rid)
        if entry is None:
            return
        if released:
            del self.pending[rid]
        entry[0].on_result(entry[1], result, released)
        self._mark(entry[0])

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
        self.core.observe_time(time.monotonic() * 1000, self.now_ms())
        if type(msg) is SnapshotChunk:
            self._on_snapshot_chunk(msg)
        else:
            self.core.step(msg)
        self.schedule_pump()

    # -- snapshots ---------------------------------------------------------------------------
    def _send_snapshot(self, peer: int) -> None:
        """Stream our last checkpoint to ``peer`` from a thread (LMDB reads are
        consistent within one read transaction); sends hop back to the loop."""
        loop = asyncio.get_running_loop()
        shard, me = self.me.shard, self.me.node_id

        def stream() -> None:
            try:
                for msg in snapshot_messages(shard, me, self.store.snapshot_chunks(SNAPSHOT_CHUNK_BYTES)):
                    loop.call_soon_threadsafe(self.peers.send, peer, msg)
            except Exception:
                log.exception("snapshot stream to %d failed", peer)

        log.info("sending a snapshot to node %d", peer)
        threading.Thread(target=stream, name="makod-snapshot", daemon=True).start()

    def _on_snapshot_chunk(self, msg: SnapshotChunk) -> None:
        got = self.snapshots.receive(msg, self.core.applied_slot)
        if got is None or self.core.paxos.role == "leader":
            return
        applied, clock, chunks = got

        def install() -> None:
            self.store.install_snapshot(applied, clock, chunks)  # on the state writer

        def installed() -> None:
            loaded = self.store.load()
            if self.core.install_snapshot(applied, clock, loaded.keyspace):
                self.compacted_upto = max(self.compacted_upto, applied)
                log.info("installed a snapshot at slot %d (%d keys)", applied, len(loaded.keyspace))
            self.schedule_pump()

        self.state_writer.submit(install, installed)

    # -- checkpoints ------------------------------------------------------------------------
    def _checkpoint(self, force: bool = False) -> None:
        """Persist committed state in parts small enough not to stall the loop.

        A checkpoint taken at applied slot A is written CHECKPOINT_CHUNK keys
        per tick; each key's value is read (committed, possibly newer than A:
        see durability.Checkpoint) and encoded when its part is written. Only
        the last part records A and lets the log be compacted below it, so a
        crash midway replays from the previous checkpoint.
        """
        now = time.monotonic()
        if self.ckpt_parts is None:
            due = (now - self.last_checkpoint_mono) * 1000 >= self.cfg.checkpoint_interval_ms
            if not (force or due or self.core.tracker.pending >= 200_000):
                return
            ckpt = self.core.checkpoint()
            if ckpt is None:
                return
            self.last_checkpoint_mono = now
            if not (ckpt.keys or ckpt.flush or force):
                return
            self.ckpt_parts = (ckpt, 0)
        ckpt, pos = self.ckpt_parts
        value_of = ckpt.value_of
        while True:
            chunk = ckpt.keys[pos : pos + CHECKPOINT_CHUNK]
            first = pos == 0
            pos += len(chunk)
            last = pos >= len(ckpt.keys)
            encoded = [(key, None if rec is None else encode_record(rec)) for key in chunk for rec in (value_of(key),)]
            job = self.store.checkpoint_chunk_job(encoded, ckpt.flush and first, ckpt if last else None)
            if last:
                # Compact the log only below a checkpoint that is on disk.
                self.state_writer.submit(job, partial(self._compact, ckpt.applied_slot))
                self.ckpt_parts = None
                self.checkpoints += 1
                return
            self.state_writer.submit(job, _nothing)
            self.ckpt_parts = (ckpt, pos)
            if not force:
                return  # the rest on the next ticks

    def _compact(self, applied_slot: int) -> None:
        upto = applied_slot - self.cfg.log_retain_slots
        if upto > self.compacted_upto:
            # The core forgets the entries now; the disk follows in order.
            self.core.paxos.compacted(upto)
            self.compacted_upto = upto
            self.writer.submit(partial(self.store.compact, upto), _nothing)

    # -- what sessions call (SessionHost) ------------------------------------------------------
    def submit(self, session: Session, token: int, request: Any) -> tuple[Any, bool] | None:
        self.next_rid += 1
        rid = self.next_rid
        self.core.observe_time(time.monotonic() * 1000, self.now_ms())
        try:
            answer = self.core.submit(rid, request)
        except Exception as exc:  # a handler bug: answer the client, keep serving
            log.exception("internal error running %r", request)
            return (ErrorReply(f"ERR internal error: {type(exc).__name__}: {exc}"), True)
        if answer is None or not answer[1]:
            self.pending[rid] = (session, token)
        if self.core.has_ready:
            self.schedule_pump()
        return answer

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

    def mako_status(self) -> dict:
        status = self.core.status()
        status.update(
            {
                "name": self.me.name,
                "node_id": self.me.node_id,
                "pid": os.getpid(),
                "host": self.me.host,
                "resp_port": self.me.resp_port,
                "peer_port": self.me.peer_port,
                "datacenter": self.me.datacenter,
                "connected_clients": len(self.clients),
                "checkpoints": self.checkpoints,
                "persist_groups": self.persist_groups,
                "persist_entries": self.persist_entries,
                "writer_jobs": self.writer.jobs_done if self.writer else 0,
                "writer_job_ms_avg": round(1000 * self.writer.job_seconds / max(1, self.writer.jobs_done), 3) if self.writer else 0,
                "writer_roundtrip_ms_avg": round(1000 * self.writer.roundtrip_seconds / max(1, self.writer.jobs_done), 3) if self.writer else 0,
                "version": __version__,
            }
        )
        if status.get("leader") is not None:
            status["leader_name"] = self.cfg.by_id(status["leader"]).name
        return status

    def mako_digest(self) -> str:
        """A hash of this replica's own applied state (not forwarded): tests
        compare replicas with it once they have applied the same prefix."""
        h = hashlib.sha256()
        ks = self.core.ks
        for key in sorted(ks.data):
            rec = ks.data[key]
            value = sorted(rec.value.items()) if isinstance(rec.value, dict) else rec.value
            h.update(repr((key, rec.kind, value, rec.expire_ms)).encode())
        return f"{self.core.applied_slot} {len(ks)} {h.hexdigest()}"

    def mako_failover(self, target: str | None) -> None:
        core = self.core
        if core.paxos.role != "leader":
            raise CommandError("ERR this node is not its shard's leader")
        shard = self.cfg.shards[self.me.shard]
        if target is None:
            voters = [r for r in shard.replicas if r.voter and r.node_id != self.me.node_id]
            if not voters:
                raise CommandError("ERR no other voter to hand leadership to")
            progress = core.paxos.follower_progress()
            target_id = max(voters, key=lambda r: progress.get(r.node_id, 0)).node_id
        else:
            try:
                rep = self.cfg.replica(target)
            except KeyError:
                raise CommandError(f"ERR no replica named '{target}'") from None
            if rep.shard != self.me.shard or not rep.voter or rep.node_id == self.me.node_id:
                raise CommandError(f"ERR '{target}' is not another voter of shard {self.me.shard}")
            target_id = rep.node_id
        if not core.paxos.transfer_leadership(target_id):
            raise CommandError("ERR leadership transfer refused")
        self.schedule_pump()


PUMP_BUDGET_S = 0.02
CHECKPOINT_CHUNK = 4_000  # records encoded per tick: ~15 ms


def _nothing() -> None:
    pass
