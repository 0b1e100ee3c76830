"""``makoctl cluster backup`` and ``restore``: a consistent cluster-wide
copy, taken while the cluster serves reads.

The cut: every node pauses writes (CLIENT PAUSE WRITE, with a deadline, so
a makoctl that dies leaves no node paused for long); makoctl then waits
until every node has drained: no request waiting, no transaction
coordinating, prepared, locked or still speculative, everything chosen
applied, twice in a row. At that point no cross-shard transaction is half
done anywhere, and every shard's state sits at one point of the vector
watermark, which the manifest records. Every key of every database is then
read with DUMP and PTTL (Redis's RDB payloads, so any type round-trips),
writes resume, and the files are closed. Reads are served throughout;
writes wait for the length of the dump.

Restore starts a new cluster with the backup's layout (optionally on other
ports) and RESTOREs every key with its expiry time (a key whose time has
passed by then is not restored). A RESTORE is one transaction, which the
cluster refuses past its max_txn_bytes; a collection grown past that by many
small writes is restored in parts instead (HSET, SADD, ZADD, RPUSH of at
most PART_BYTES each, then its expiry).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import msgpack
import redis

from makod.config import ClusterConfig
from makoctl import procs

MANIFEST = "manifest.json"
FORMAT = 1
SCAN_COUNT = 1000
RESTORE_BATCH = 500
PART_BYTES = 256 * 1024
# Drained: what must be zero on every node, and applied == commit.
DRAIN_ZERO = ("waiting_requests", "coordinating", "prepared", "speculative_txns", "locks", "inflight_batches",
              "unresolved_slots")


class BackupError(Exception):
    pass


@dataclass
class Cut:
    shards: list[dict]  # per shard: leader, applied_index, vector_watermark


def _clients(cfg: ClusterConfig, data_dir: str) -> dict[str, redis.Redis]:
    states = procs.cluster_states(cfg, data_dir, 2.0)
    leaders = {s.shard for s in states if s.role == "leader"}
    missing = sorted({r.shard for r in cfg.replicas} - leaders)
    if missing:
        raise BackupError(f"shard(s) {', '.join(map(str, missing))} have no leader: a backup needs every shard")
    return {s.name: procs.client(cfg.replica(s.name), cfg.requirepass, 10.0) for s in states if s.health == procs.OK}


def _drained(statuses: dict[str, dict]) -> bool:
    for st in statuses.values():
        if any(st.get(k, 0) for k in DRAIN_ZERO) or st.get("applied_index") != st.get("commit_index"):
            return False
    return True


def _statuses(clients: dict[str, redis.Redis]) -> dict[str, dict]:
    return {name: json.loads(c.execute_command("MAKO", "STATUS")) for name, c in clients.items()}


def pause_and_drain(clients: dict[str, redis.Redis], pause_ms: int, drain_timeout_s: float) -> dict[str, dict]:
    for c in clients.values():
        c.execute_command("CLIENT", "PAUSE", str(pause_ms), "WRITE")
    deadline = time.monotonic() + drain_timeout_s
    before: dict[str, dict] | None = None
    while True:
        now = _statuses(clients)
        if _drained(now) and before is not None and _drained(before) and all(
            now[n]["commit_index"] == before[n]["commit_index"] for n in now
        ):
            return now
        if time.monotonic() > deadline:
            busy = {n: {k: st.get(k) for k in DRAIN_ZERO if st.get(k)} for n, st in now.items() if not _drained({n: st})}
            raise BackupError(f"the cluster did not drain within {drain_timeout_s:.0f}s: {busy}")
        before = now
        time.sleep(0.1)


def unpause(clients: dict[str, redis.Redis]) -> None:
    for c in clients.values():
        try:
            c.execute_command("CLIENT", "UNPAUSE")
        except redis.RedisError:
            pass  # its pause deadline frees it


def _databases(client: redis.Redis) -> list[int]:
    info = client.info("keyspace")  # redis-py: {"db0": {...}, ...}
    return sorted(int(name[2:]) for name in info if name.startswith("db") and name[2:].isdigit())


def _dump_db(client: redis.Redis, db: int, out: Any, progress: Callable[[int], None]) -> int:
    client.execute_command("SELECT", db)
    cursor, n = b"0", 0
    while True:
        cursor, keys = client.execute_command("SCAN", cursor, "COUNT", SCAN_COUNT)
        if keys:
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.execute_command("DUMP", key)
                pipe.execute_command("PTTL", key)
            replies = pipe.execute()
            for i, key in enumerate(keys):
                payload, pttl = replies[2 * i], replies[2 * i + 1]
                if payload is None:
                    continue  # expired between SCAN and DUMP
                # Expiry as a Unix time in ms (0: none): a key restored later expires when it would have.
                expire_at = int(time.time() * 1000) + pttl if pttl > 0 else 0
                out.write(msgpack.packb([key, expire_at, payload], use_bin_type=True))
                n += 1
            progress(len(keys))
        if cursor in (b"0", 0, "0"):
            return n


def backup(cfg: ClusterConfig, data_dir: str, out_dir: str, pause_ms: int = 60_000, drain_timeout_s: float = 30.0,
           progress: Callable[[int], None] = lambda n: None) -> dict:
    if os.path.exists(os.path.join(out_dir, MANIFEST)):
        raise BackupError(f"{out_dir} already holds a backup")
    clients = _clients(cfg, data_dir)
    os.makedirs(out_dir, mode=0o700, exist_ok=True)
    started = time.time()
    try:
        statuses = pause_and_drain(clients, pause_ms, drain_timeout_s)
        paused_at = time.monotonic()
        cut = [
            {"shard": st["shard"], "leader": name, "applied_index": st["applied_index"],
             "vector_watermark": st.get("vector_watermark")}
            for name, st in sorted(statuses.items()) if st.get("role") == "leader"
        ]
        reader = procs.client(cfg.replica(cut[0]["leader"]), cfg.requirepass, 30.0)
        dbs: dict[str, int] = {}
        with reader:
            for db in sorted({db for c in clients.values() for db in _databases(c)}):
                with open(os.path.join(out_dir, f"db{db}.bin"), "wb") as f:
                    dbs[str(db)] = _dump_db(reader, db, f, progress)
                    f.flush()
                    os.fsync(f.fileno())
        paused_s = time.monotonic() - paused_at
    finally:
        unpause(clients)
        for c in clients.values():
            c.close()
    with open(os.path.join(data_dir, procs.CONFIG_NAME)) as src:
        config_text = src.read()
    fd = os.open(os.path.join(out_dir, procs.CONFIG_NAME), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(config_text)
    manifest = {"format": FORMAT, "cluster": cfg.name, "taken_at": started, "shards": len(cfg.shards),
                "cut": cut, "keys": dbs, "writes_paused_s": round(paused_s, 3)}
    with open(os.path.join(out_dir, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2)
    return manifest


def read_manifest(backup_dir: str) -> dict:
    try:
        with open(os.path.join(backup_dir, MANIFEST)) as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise BackupError(f"{backup_dir} holds no backup (no {MANIFEST})") from None
    except ValueError as exc:
        raise BackupError(f"{os.path.join(backup_dir, MANIFEST)}: not JSON ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{backup_dir}: backup format {manifest.get('format')!r}, this makoctl reads {FORMAT}")
    return manifest


def entries(backup_dir: str, db: int) -> Iterator[tuple[bytes, int, bytes]]:
    path = os.path.join(backup_dir, f"db{db}.bin")
    with open(path, "rb") as f:
        for item in msgpack.Unpacker(f, raw=True, max_buffer_size=1 << 31):
            if not (isinstance(item, list) and len(item) == 3):
                raise BackupError(f"{path}: damaged entry")
            yield item[0], item[1], item[2]


def load(client: redis.Redis, backup_dir: str, manifest: dict, progress: Callable[[int], None],
         max_txn_bytes: int) -> int:
    """RESTORE every key of the backup through ``client`` (a node of the new cluster)."""
    # A payload is about the size of the ops its RESTORE writes, or smaller
    # (RDB packs small integers and short strings tighter): keep a margin.
    whole_max = max_txn_bytes // 4
    total = 0
    for db_text in manifest["keys"]:
        db = int(db_text)
        client.execute_command("SELECT", db)
        batch: list = []
        for key, expire_at, payload in entries(backup_dir, db):
            if len(payload) > whole_max:
                _restore_in_parts(client, key, expire_at, payload, min(PART_BYTES, whole_max))
                total += 1
                progress(1)
                continue
            batch.append((key, expire_at, payload))
            if len(batch) >= RESTORE_BATCH:
                total += _restore(client, batch, progress)
                batch = []
        if batch:
            total += _restore(client, batch, progress)
    return total


def _restore(client: redis.Redis, batch: list, progress: Callable[[int], None]) -> int:
    pipe = client.pipeline(transaction=False)
    for key, expire_at, payload in batch:
        if expire_at:  # a time already past restores nothing, as in Redis
            pipe.execute_command("RESTORE", key, expire_at, payload, "REPLACE", "ABSTTL")
        else:
            pipe.execute_command("RESTORE", key, 0, payload, "REPLACE")
    for (key, _, _), reply in zip(batch, pipe.execute(raise_on_error=False)):
        if isinstance(reply, Exception):
            raise BackupError(f"RESTORE of key {key!r} failed: {reply}")
    progress(len(batch))
    return len(batch)


def _parts(items: list, size: Callable[[Any], int], max_bytes: int) -> Iterator[list]:
    part: list = []
    part_bytes = 0
    for item in items:
        part.append(item)
        part_bytes += size(item)
        if part_bytes >= max_bytes:
            yield part
            part, part_bytes = [], 0
    if part:
        yield part


def _restore_in_parts(client: redis.Redis, key: bytes, expire_at: int, payload: bytes, part_bytes: int) -> None:
    """One key too big for one RESTORE: its elements in parts, then its expiry."""
    from makod.kv import rdb
    from makod.kv.records import KIND_HASH, KIND_LIST, KIND_SET, KIND_ZSET

    try:
        kind, value = rdb.decode_payload(payload, 1 << 40)
    except rdb.RdbError as exc:
        raise BackupError(f"key {key!r}: damaged payload ({exc})") from None
    client.delete(key)
    if kind == KIND_HASH:
        for part in _parts(list(value.items()), lambda fv: len(fv[0]) + len(fv[1]) + 8, part_bytes):
            client.hset(key, mapping=dict(part))
    elif kind == KIND_SET:
        for part in _parts(value, lambda m: len(m) + 8, part_bytes):
            client.sadd(key, *part)
    elif kind == KIND_ZSET:
        for part in _parts(value, lambda ms: len(ms[0]) + 16, part_bytes):
            client.zadd(key, dict(part))
    elif kind == KIND_LIST:
        for part in _parts(value, lambda e: len(e) + 8, part_bytes):
            client.rpush(key, *part)
    else:  # a string or a stream: its writes were bounded, so only a bigger bound made it
        raise BackupError(f"key {key!r}: {len(payload)} bytes, too big for one transaction of the new cluster "
                          f"and not a hash, set, sorted set or list: raise max_txn_bytes (at most 64 MiB)")
    if expire_at:
        client.pexpireat(key, expire_at)  # a time already past deletes it, as RESTORE ABSTTL would


def restore_config(backup_dir: str, base_port: int | None) -> str:
    """The backed-up cluster config as a file to start from, with ports moved
    to ``base_port`` (resp, +10000 peer, +30000 metrics) when given."""
    import tempfile

    import yaml

    with open(os.path.join(backup_dir, procs.CONFIG_NAME)) as f:
        raw = yaml.safe_load(f)
    # A new cluster: its first membership is every replica the backed-up
    # one had, in the role add-replica last wrote (docs/MEMBERSHIP.md).
    for shard in raw["shards"]:
        for rep in shard["replicas"]:
            rep.pop("joined", None)
        # Its logs begin afresh, so its first assignment is where the slots
        # were (docs/RESHARDING.md): the restore writes each key there.
        if "serving" in shard:
            shard["slots"] = shard.pop("serving")
    if base_port is not None:
        i = 0
        for shard in raw["shards"]:
            for rep in shard["replicas"]:
                rep["resp_port"], rep["peer_port"] = base_port + i, base_port + 10000 + i
                rep.pop("tls_port", None)
                if base_port + 30000 + i <= 65535:
                    rep["metrics_port"] = base_port + 30000 + i
                else:
                    rep.pop("metrics_port", None)
                i += 1
    fd, path = tempfile.mkstemp(prefix="makodb-restore-", suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(raw, f, sort_keys=False)
    return path
