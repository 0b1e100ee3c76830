"""A native Python client for stored procedures (what the TPC-C driver uses).

    from makod.client import MakoClient
    client = MakoClient(port=7379)
    client.call("bank.transfer", {"from": "alice", "to": "bob", "amount": 5})

Calls travel over the RESP port as ``MAKO CALL <name> <msgpack args>``, so
any node accepts them; the node runs the procedure as one transaction.
"""

from __future__ import annotations

from typing import Any

import msgpack
import redis


class ProcedureAborted(Exception):
    """The procedure called tx.abort(reason): nothing it wrote happened."""


class MakoClient:
    def __init__(self, host: str = "127.0.0.1", port: int = 7379, password: str | None = None,
                 socket_timeout: float = 30.0) -> None:
        self.redis = redis.Redis(host=host, port=port, password=password, protocol=2,
                                 socket_timeout=socket_timeout)

    def call(self, name: str, args: Any = None) -> Any:
        packed = msgpack.packb(args, use_bin_type=True)
        try:
            raw = self.redis.execute_command("MAKO", "CALL", name, packed)
        except redis.ResponseError as exc:
            text = str(exc)
            if text.startswith("ABORT "):
                raise ProcedureAborted(text[len("ABORT "):]) from None
            raise
        return msgpack.unpackb(raw, raw=False, strict_map_key=False)

    def close(self) -> None:
        self.redis.close()

    def __enter__(self) -> "MakoClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class ClusterClient:
    """Routes each call to the leader of the shard that owns ``route_key``.

    Any node would do (a follower forwards, and a node coordinates
    transactions that touch other shards), but sending a call straight to the
    leader of its home shard saves a hop. Leaders are learned from
    ``MAKO STATUS`` and refreshed when a call fails over.
    """

    def __init__(self, cfg: "Any", password: str | None = None, socket_timeout: float = 30.0) -> None:
        from makod.core.slots import SlotMap

        self.cfg = cfg
        self.password = password if password is not None else cfg.requirepass
        self.timeout = socket_timeout
        self.slots = SlotMap([shard.current_slots for shard in cfg.shards])
        self.clients: dict[str, MakoClient] = {}
        self.leaders: dict[int, str] = {}

    def _client(self, name: str) -> MakoClient:
        client = self.clients.get(name)
        if client is None:
            rep = self.cfg.replica(name)
            client = MakoClient(rep.host, rep.resp_port, self.password, self.timeout)
            self.clients[name] = client
        return client

    def refresh(self) -> None:
        import json

        self.leaders = {}
        for rep in self.cfg.replicas:
            try:
                status = json.loads(self._client(rep.name).redis.execute_command("MAKO", "STATUS"))
            except (redis.RedisError, OSError):
                continue
            if status.get("role") == "leader" and status.get("serving"):
                self.leaders[rep.shard] = rep.name

    def node_for(self, route_key: bytes) -> str:
        shard = self.slots.shard_of(route_key)
        if shard not in self.leaders:
            self.refresh()
        return self.leaders.get(shard) or self.cfg.shards[shard].replicas[0].name

    def call(self, name: str, args: Any = None, route_key: bytes = b"", retries: int = 3) -> Any:
        """Run procedure ``name`` at the leader of ``route_key``'s shard.

        Retried (with fresh leader knowledge) only when the call certainly
        did not run: the connection was refused, or the node had no leader.
        Any other failure may have run it, so it is raised, not repeated.
        """
        last: Exception | None = None
        for _ in range(retries + 1):
            node = self.node_for(route_key)
            try:
                return self._client(node).call(name, args)
            except redis.exceptions.ClusterDownError as exc:
                if "outcome is unknown" in str(exc):
                    raise
                last = exc
            except redis.ConnectionError as exc:
                if not isinstance(exc.__cause__ or exc.__context__, ConnectionRefusedError) and "refused" not in str(exc):
                    raise
                last = exc
            self.leaders = {}
        assert last is not None
        raise last

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
