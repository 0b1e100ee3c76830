"""Routing a client's request at a node (a mixin of ``NodeCore``): by the
shards its keys live on, run here (as a local transaction at this shard's
leader), forwarded to the leader, coordinated across shards, or fanned out
to every shard; and the queue of requests waiting for a leader or a lock."""

from __future__ import annotations

from typing import Any

from makod.core.context import KeyLocked, NeedRemote, SlotsMoving
from makod.core.luigi_leader import covers_owns
from makod.core.requests import WatchRequest
from makod.core.slots import BUSY
from makod.kv import errors


class Routing:
    # -- routing ------------------------------------------------------------------------------
    def _route(self, token: Any, request: Any, since: float | None = None) -> tuple[Any, bool] | None:
        """``since``: when the request first had to wait (kept across retries,
        so the queue timeout is measured from then, not from the last retry)."""
        self._since = since
        kind, shard = self._classify(request)
        if kind == "procedure" and self.luigi is not None:
            kind, shard = self.luigi.classify(request)
        serving = self.replica.can_serve()
        if shard == BUSY:
            # A slot it touches is moving off or onto this shard: wait for
            # the move's next step (then it routes to whoever holds it).
            self._wait(token, request)
            return None
        if kind == "single":
            if shard == self.shard and serving:
                return self._run_here(token, request, trap_remote=False)
            return self._send_to_shard(token, request, shard)
        if kind == "procedure":
            if serving:
                return self._run_here(token, request, trap_remote=self.num_shards > 1)
            return self._send_to_shard(token, request, self.shard)
        # Cross-shard work needs a coordinator: us if we lead, else our leader.
        if serving:
            if kind == "multi":
                self.coord.start(token, request)
            else:
                self.coord.gather(token, request)
            return None
        return self._send_to_shard(token, request, self.shard)

    def _classify(self, request: Any) -> tuple[str, int]:
        if self.num_shards == 1:
            return "single", self.shard
        shard_of = self.slots.shard_of_user
        if type(request) is WatchRequest:
            shards = {shard_of(request.db, k) for k in request.keys}
        elif request.shard is not None:
            return "single", request.shard
        else:
            shards = set()
            for i, argv in enumerate(request.commands):
                spec = self.lookup(argv)
                if spec.scope == "keyspace":
                    if len(request.commands) == 1 and not request.watches:
                        return "fanout", -1
                    return "multi", -1
                if "movablekeys" in spec.flags and (
                    spec.key_finder is None or (spec.reads_data_keys is not None and spec.reads_data_keys(argv))
                ):
                    return ("procedure", -1) if len(request.commands) == 1 else ("multi", -1)
                db = request.db_of(i)
                shards.update(shard_of(db, k) for k in spec.keys(argv))
            shards.update(shard_of(db, k) for db, k, _ in request.watch_items())
        if BUSY in shards:
            return "single", BUSY
        if len(shards) <= 1:
            return "single", shards.pop() if shards else self.shard
        return "multi", -1

    def _run_here(self, token: Any, request: Any, trap_remote: bool) -> tuple[Any, bool] | None:
        ran = self._execute(token, request, self.mono_ms, trap_remote)
        if ran is None:
            return None
        return self.finish(token, ran[0], ran[1], now=True, events=self.replica.last_events,
                           ops=self.replica.last_ops, durable=self._durable_ack(request))

    def _durable_ack(self, request: Any) -> bool:
        """Must this request's reply wait until it is durable, whatever ``ack``
        says (CommandSpec.durable_ack)? Only asked under ack: speculative."""
        if self.cfg.ack != "speculative":
            return False
        lookup = self.lookup
        for argv in getattr(request, "commands", None) or ():
            spec = lookup(argv) if argv else None
            if spec is not None and spec.durable_ack:
                return True
        return False

    def _execute(self, token: Any, request: Any, since: float, trap_remote: bool) -> tuple[Any, tuple] | None:
        """Run on this leader: (result, deps), or None when it must wait,
        parked behind a lock or handed to the coordinator (another shard's key).

        ``trap_remote`` must hold on every attempt: a procedure run without it
        would read another shard's key as absent.
        """
        if self.luigi is not None:
            fp = self.luigi.admit(token, request, since, trap_remote)
            if fp is None:
                return None  # queued for its turn in timestamp order, or refused
            return self._execute_admitted(token, request, since, trap_remote, fp)
        try:
            return self.replica.execute(request, trap_remote)
        except SlotsMoving:
            self._wait(token, request)  # since it first had to wait (_route keeps that in _since)
        except KeyLocked:
            if len(self.blocked) >= self.cfg.max_queued_requests:
                self.deliver_error(token, errors.TRYAGAIN_BUSY_KEY)
            else:
                self.blocked.append((token, request, since, trap_remote))
        except NeedRemote:
            self.coord.start(token, request)
        return None

    def _execute_admitted(self, token: Any, request: Any, since: float, trap_remote: bool, fp: Any):
        """Luigi: run a single-shard request whose turn it is (``fp``: its footprint)."""
        try:
            if trap_remote or self.luigi.runs_procedure(request):  # type: ignore[union-attr]
                return self.replica.execute(request, True, covers_owns(self, fp), fp.covers_write)
            return self.replica.execute(request)
        except KeyLocked:
            if len(self.blocked) >= self.cfg.max_queued_requests:
                self.deliver_error(token, errors.TRYAGAIN_BUSY_KEY)
            else:
                self.blocked.append((token, request, since, trap_remote))
        except NeedRemote as need:
            key = need.keys[0] if need.keys else (need.ranges[0][0] if need.ranges else b"")
            self.deliver_error(token, errors.LUIGI_OUTSIDE_FOOTPRINT.format(key[:40].decode("utf-8", "replace")))
        return None

    def _run_admitted(self, token: Any, request: Any, since: float, trap_remote: bool, fp: Any) -> None:
        ran = self._execute_admitted(token, request, since, trap_remote, fp)
        if ran is not None:
            self.finish(token, ran[0], ran[1], events=self.replica.last_events, ops=self.replica.last_ops,
                        durable=self._durable_ack(request))

    def _wait(self, token: Any, request: Any, since: float | None = None) -> None:
        if len(self.waiting) >= self.cfg.max_queued_requests:
            self.deliver_error(token, errors.CLUSTERDOWN_NO_LEADER.format(self.shard))  # (or a move too slow)
            return
        if since is None:
            since = self._since if self._since is not None else self.mono_ms
        self.waiting.append((token, request, since))

    def _drain_waiting(self) -> None:
        for _ in range(len(self.waiting)):
            token, request, since = self.waiting.popleft()
            if self.mono_ms - since >= self.cfg.queue_timeout_ms:
                kind, shard = self._classify(request)
                if shard == BUSY:
                    self.deliver_error(token, errors.TRYAGAIN_SLOT_MOVING)
                elif self.replica.can_serve() and (shard == self.shard or kind == "procedure"):
                    # Ours to run, and we serve: it waited for our slots to stop moving.
                    self.deliver_error(token, errors.TRYAGAIN_SLOTS_MOVING)
                else:
                    self.deliver_error(token, errors.CLUSTERDOWN_NO_LEADER.format(shard if shard >= 0 else self.shard))
                continue
            answer = self._route(token, request, since)
            self._since = None
            if answer is not None:
                # It ran now; a client token's answer goes out through results.
                self._results.append((token, answer[0], answer[1]))

    def _retry_blocked(self, force: bool = False) -> None:
        if not self.blocked or not (force or self.replica.lock_released):
            return
        self.replica.lock_released = False
        version = self.blocked_slots_version
        self.blocked_slots_version = self.slots.current()
        for _ in range(len(self.blocked)):
            token, request, since, trap_remote = self.blocked.popleft()
            if self.mono_ms - since >= self.cfg.txn_timeout_ms:
                # Waiting for a lock, or for an index being made (kv/key_indexes.py).
                indexing = self.replica.ks.indexes.building
                self.deliver_error(token, errors.TRYAGAIN_INDEXING if indexing else errors.TRYAGAIN_BUSY_KEY)
                continue
            if not self.replica.can_serve():
                self._wait(token, request, since)
                continue
            if version != self.blocked_slots_version and self.num_shards > 1:
                # Slots moved while it waited: route it again.
                answer = self._route(token, request, since)
                self._since = None
                if answer is not None:
                    self._results.append((token, answer[0], answer[1]))
                continue
            ran = self._execute(token, request, since, trap_remote)
            if ran is not None:
                self.finish(token, ran[0], ran[1], events=self.replica.last_events, ops=self.replica.last_ops,
                            durable=self._durable_ack(request))

    # -- watermarks and leaders ------------------------------------------------------------------------
