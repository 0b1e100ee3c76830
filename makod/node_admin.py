"""What a node answers about itself: MAKO STATUS, MAKO DIGEST, ROLE, and MAKO
FAILOVER's start. A mixin of ``makod.server.Node`` (it reads the node's
core, config and counters), kept apart so the server module stays the
event loop's wiring."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from makod import __version__
from makod.kv.errors import CommandError


class NodeAdmin:
    core: Any
    cfg: Any
    me: Any

    def role_reply(self) -> list:
        """ROLE, as a Redis master or replica answers it."""
        core = self.core
        paxos = core.paxos
        if paxos.role == "leader":
            followers = [
                [rep.host, str(rep.resp_port), str(paxos.match.get(rep.node_id, 0))]
                for rep in self.cfg.shards[self.me.shard].replicas
                if rep.node_id != self.me.node_id
            ]
            return ["master", core.applied_slot, followers]
        leader = paxos.known_leader()
        rep = None if leader is None else self.cfg.find(leader)
        if rep is None:
            return ["slave", "?", -1, "connect", -1]
        return ["slave", rep.host, rep.resp_port, "connected", core.applied_slot]

    def mako_status(self) -> dict:
        status = self.core.status()
        writer = self.disk.log_writer
        status.update(
            {
                "name": self.me.name,
                "cluster": self.cfg.name,
                "cluster_id": self.cfg.cluster_id,
                "node_id": self.me.node_id,
                "pid": os.getpid(),
                "host": self.me.host,
                "resp_port": self.me.resp_port,
                "peer_port": self.me.peer_port,
                "datacenter": self.me.datacenter,
                "connected_clients": len(self.clients),
                "commands_processed": self.stats.commands_processed(),
                # Sums over commandstats: a watcher's mean latency over its window.
                "command_calls": sum(e[0] for e in self.command_stats.commands.values()),
                "command_usec": sum(e[1] for e in self.command_stats.commands.values()),
                "checkpoints": self.driver.checkpoints,
                "persist_groups": self.driver.persist_groups,
                "gc": self.gc_pauses.snapshot(),
                "persist_entries": self.driver.persist_entries,
                "writer_jobs": writer.jobs_done if writer else 0,
                "writer_job_ms_avg": round(1000 * writer.job_seconds / max(1, writer.jobs_done), 3) if writer else 0,
                "writer_roundtrip_ms_avg": round(1000 * writer.roundtrip_seconds / max(1, writer.jobs_done), 3) if writer else 0,
                "version": __version__,
            }
        )
        status["keyspace"] = {f"db{db}": {"keys": keys, "expires": expires}
                              for db, (keys, expires) in self.core.ks.db_stats().items()}
        peers = self.tracking_peers
        status["tracking"] = {"clients": len(self.tracking.clients), "heard_peers": len(peers.heard),
                              "interested_peers": len(peers.interested), "flushes": peers.flushes}
        preferred = self.cfg.preferred_leader(self.me.shard)
        status["preferred_leader"] = None if preferred is None else self.cfg.by_id(preferred).name
        if status.get("leader") is not None:
            rep = self.cfg.find(status["leader"])
            status["leader_name"] = rep.name if rep is not None else f"node {status['leader']}"
        return status

    def mako_gc(self) -> dict:
        """MAKO GC: a full collection, frozen objects included (gc_pauses.py)."""
        return self.gc_pauses.full_pass()

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

    def mako_prefer(self, target: str) -> None:
        """MAKO PREFER: which voter of this shard should lead when it can,
        until the node restarts (makoctl writes the same choice into the
        config, as the shard's preferred_leader, so it outlives a restart)."""
        if target.lower() == "none":
            self.cfg.shards[self.me.shard].preferred_leader = None
            self.core.paxos.set_preferred(None)
            return
        try:
            rep = self.cfg.replica(target)
        except KeyError:
            raise CommandError(f"ERR no replica named '{target}'") from None
        if rep.shard != self.me.shard or rep.node_id not in self.core.paxos.voters:
            raise CommandError(f"ERR '{target}' is not a voter of shard {self.me.shard}")
        self.cfg.shards[self.me.shard].preferred_leader = rep.name
        self.core.paxos.set_preferred(rep.node_id)
        self.schedule_pump()

    def mako_failover(self, target: str | None) -> None:
        core = self.core
        if core.paxos.role != "leader":
            raise CommandError("ERR this node is not its shard's leader")
        shard = self.cfg.shards[self.me.shard]
        if target is None:
            # The voters are the shard log's (membership changes), not the file's.
            voters = [r for r in shard.replicas if r.node_id in core.paxos.voters and r.node_id != self.me.node_id]
            if not voters:
                raise CommandError("ERR no other voter to hand leadership to")
            progress = core.paxos.follower_progress()
            target_id = max(voters, key=lambda r: progress.get(r.node_id, 0)).node_id
        else:
            try:
                rep = self.cfg.replica(target)
            except KeyError:
                raise CommandError(f"ERR no replica named '{target}'") from None
            if rep.shard != self.me.shard or rep.node_id not in core.paxos.voters or rep.node_id == self.me.node_id:
                raise CommandError(f"ERR '{target}' is not another voter of shard {self.me.shard}")
            target_id = rep.node_id
        if not core.paxos.transfer_leadership(target_id):
            raise CommandError("ERR leadership transfer refused")
        self.schedule_pump()
