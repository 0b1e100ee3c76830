"""What a node answers about its shard's membership, and how it changes it:
MAKO MEMBERS, MAKO MEMBER ADD|PROMOTE|REMOVE, MAKO TOPOLOGY RELOAD. A mixin
of ``makod.server.Node``.

The membership itself is the shard's log (makod/core/membership.py); the
config file only says where each replica is. ``makoctl cluster add-replica``
writes a new replica into the file, has every node reload it, starts the
replica, then asks the shard's leader to add it as a learner and, once it
has caught up, to promote it (docs/MEMBERSHIP.md, "makoctl")."""

from __future__ import annotations

import json
from typing import Any

from makod.config import ConfigError, load_config_file
from makod.core import slot_table
from makod.core.membership import Membership
from makod.kv import errors
from makod.kv.errors import CommandError


class NodeMembers:
    core: Any
    cfg: Any
    me: Any
    peers: Any
    pubsub: Any
    tracking_peers: Any
    config_path: str

    def members_reply(self) -> str:
        paxos = self.core.paxos
        pending = paxos.memberships()[1:]
        return json.dumps({
            "shard": self.me.shard,
            "role": paxos.role,
            "leader": paxos.known_leader(),
            "voters": list(paxos.base.voters),
            "learners": list(paxos.base.learners),
            "pending": [m.to_list() for m in pending],
            "commit_index": paxos.commit,
            "match": {str(k): v for k, v in paxos.match.items()} if paxos.role == "leader" else {},
            "names": {str(r.node_id): r.name for r in self.cfg.replicas},
        }, sort_keys=True)

    def slotmap_reply(self) -> str:
        slots = self.core.slots
        return json.dumps({
            "shard": self.me.shard,
            "version": slots.current(),
            "moving": slots.busy,
            "ranges": slots.ranges(),
            "table": slot_table.describe(slots.own_table),
        }, sort_keys=True)

    def mako_route(self, lo: int, hi: int, shard: int) -> int:
        """The operator says shard ``shard`` now holds slots lo..hi: a hint
        (our own shard's slots follow only its log); 1 if it changed ours."""
        if not (0 <= lo <= hi < 16384):
            raise CommandError(errors.SLOTS_BAD_RANGE.format(lo, hi))
        if not 0 <= shard < len(self.cfg.shards):
            raise CommandError(errors.SLOTS_BAD_SHARD.format(shard, self.me.shard))
        return 1 if self.core.slots.learn(lo, hi, shard) else 0

    def mako_member(self, action: str, node_id: int) -> None:
        paxos = self.core.paxos
        shard = self.me.shard
        if paxos.role != "leader":
            raise CommandError(errors.NOT_SHARD_LEADER)
        try:
            rep = self.cfg.by_id(node_id)
        except KeyError:
            raise CommandError(errors.NO_REPLICA_WITH_ID.format(node_id)) from None
        if rep.shard != shard:
            raise CommandError(errors.REPLICA_OF_OTHER_SHARD.format(rep.name, rep.shard, shard))
        base = paxos.base
        if action == "ADD":
            if node_id in base.nodes:
                kind = "voter" if node_id in base.voters else "learner"
                raise CommandError(errors.MEMBER_ALREADY.format(rep.name, kind, shard))
            new = Membership.of(base.voters, base.learners + (node_id,))
        elif action == "PROMOTE":
            if node_id in base.voters:
                raise CommandError(errors.MEMBER_ALREADY.format(rep.name, "voter", shard))
            if node_id not in base.learners:
                raise CommandError(errors.MEMBER_NOT_LEARNER.format(rep.name, shard))
            new = Membership.of(base.voters + (node_id,), [n for n in base.learners if n != node_id])
        elif action == "REMOVE":
            if node_id not in base.nodes:
                raise CommandError(errors.MEMBER_NOT_MEMBER.format(rep.name, shard))
            if base.voters == (node_id,):
                raise CommandError(errors.MEMBER_CHANGE_REFUSED.format("a shard needs at least one voter"))
            new = Membership.of([n for n in base.voters if n != node_id], [n for n in base.learners if n != node_id])
        else:
            raise CommandError(errors.MEMBER_BAD_ACTION.format(action))
        why = self.core.replica.change_membership(new)
        if why is not None:
            raise CommandError(errors.MEMBER_CHANGE_REFUSED.format(why))
        self.schedule_pump()

    def reload_topology(self) -> str:
        """Re-read the config file's replicas: reach the ones added, stop
        counting on the ones removed, and know the shards added at the end
        (makoctl cluster add-shard: no slots of their own yet). Nothing else
        in the file may differ."""
        if not self.config_path:
            raise CommandError(errors.TOPOLOGY_BAD_FILE.format("this node was started without --config"))
        try:
            new = load_config_file(self.config_path)
        except ConfigError as exc:
            raise CommandError(errors.TOPOLOGY_BAD_FILE.format(" ".join(str(exc).split()))) from None
        old = self.cfg
        if (new.name, new.cluster_id) != (old.name, old.cluster_id):
            raise CommandError(errors.TOPOLOGY_BAD_FILE.format(f"{self.config_path} is another cluster's"))
        if len(new.shards) < len(old.shards):
            raise CommandError(errors.TOPOLOGY_BAD_FILE.format(
                f"it has {len(new.shards)} shards, this node {len(old.shards)} (shards are never removed)"))
        for mine, theirs in zip(old.shards, new.shards):
            if mine.slots != theirs.slots:
                raise CommandError(errors.TOPOLOGY_BAD_FILE.format(
                    f"it changes shard {mine.id}'s slots (the first assignment; moves write serving)"))
        if len(new.shards) > len(old.shards) and self.cfg.protocol == "luigi":
            raise CommandError(errors.TOPOLOGY_BAD_FILE.format("protocol luigi cannot add shards"))
        try:
            me = new.replica(self.me.name)
        except KeyError:
            raise CommandError(errors.TOPOLOGY_BAD_FILE.format(f"it has no replica named {self.me.name}")) from None
        if (me.node_id, me.host, me.resp_port, me.peer_port) != (
                self.me.node_id, self.me.host, self.me.resp_port, self.me.peer_port):
            raise CommandError(errors.TOPOLOGY_BAD_FILE.format(f"it moved or renumbered {self.me.name}"))
        added_shards = len(new.shards) - len(old.shards)
        known = {r.node_id for r in old.replicas}
        added = [r for r in new.replicas if r.node_id not in known]
        removed = known - {r.node_id for r in new.replicas}
        for rep in added:
            self.peers.add_peer(rep.node_id, rep.host, rep.peer_port)
        old.set_replicas(new)
        self.core.set_members(old.topology())
        self.peers.validator.num_shards = len(old.shards)
        # The file's slots (rewritten by makoctl cluster reshard) are hints;
        # our own shard's slots follow its log.
        for sh in new.shards:
            for lo, hi in sh.current_slots:
                self.core.slots.learn(lo, hi, sh.id)
        # Publishes and client-side caching's invalidations reach every node.
        self.pubsub.set_replicas([[r.node_id for r in sh.replicas] for sh in old.shards])
        self.tracking_peers.peers = [r.node_id for r in old.replicas if r.node_id != self.me.node_id]
        self.schedule_pump()
        if added_shards:
            return f"added {len(added)}, removed {len(removed)}, shards added {added_shards}"
        return f"added {len(added)}, removed {len(removed)}"
