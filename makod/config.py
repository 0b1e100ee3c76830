"""The cluster configuration: one YAML file describes every shard and replica.

Every node reads the same file and finds itself by name. Validation errors
name the file, the field (as a path such as ``shards[1].replicas[0].resp_port``)
and what was expected, because the person reading them is fixing a file.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from makod.kv import notify
from makod.config_check import ConfigError, _parse_links, _Validator  # noqa: F401  (ConfigError: re-exported)
from makod.links import MAX_LINK_MS, LinkModel

NUM_SLOTS = 16384
PROTOCOLS = ("mako", "2pc-paxos", "luigi")
ACK_MODES = ("durable", "speculative")


MAX_TXN_BYTES_LIMIT = 64 * 1024 * 1024

@dataclass
class ReplicaConfig:
    name: str
    node_id: int  # cluster-wide: the replica's ``id``, else its position in file order
    shard: int
    host: str
    resp_port: int
    peer_port: int
    datacenter: str
    voter: bool = True
    tls_port: int | None = None  # RESP over TLS (with a tls: section)
    metrics_port: int | None = None  # Prometheus GET /metrics (None: no endpoint)
    # Added while the cluster ran (makoctl cluster add-replica): the shard's
    # log says whether it is a voter or a learner; this file only says
    # where it is. It is not in the shard's first membership.
    joined: bool = False


@dataclass
class ShardConfig:
    id: int
    slots: list[tuple[int, int]]  # inclusive ranges
    replicas: list[ReplicaConfig]
    # The replica named in the shard's ``preferred_leader`` (makoctl cluster
    # failover --stick writes it): wins over leader_datacenter.
    preferred_leader: str | None = None
    # The slots it serves now, when moves (makoctl cluster reshard) changed
    # them: a routing hint. ``slots`` stays what the cluster started with,
    # where each shard's log begins (core/slot_table.py).
    serving: list[tuple[int, int]] | None = None

    @property
    def current_slots(self) -> list[tuple[int, int]]:
        return self.serving if self.serving is not None else self.slots


@dataclass
class ClusterConfig:
    name: str
    shards: list[ShardConfig]
    # Unique per cluster (makoctl cluster start writes one): two clusters
    # with the same name and node names still tell each other apart.
    cluster_id: str | None = None
    protocol: str = "mako"
    ack: str = "durable"
    bind: str = "127.0.0.1"
    requirepass: str | None = None
    # The secret every peer link proves knowledge of (net/peer_auth.py):
    # given inline, or in a file (relative paths from the config's directory;
    # default: cluster.secret beside the config, made by makoctl).
    cluster_secret: str | None = None
    cluster_secret_file: str | None = None
    proto_max_bulk_len: int = 512 * 1024 * 1024
    # What one transaction may write (its ops, encoded), and read from another
    # shard: a leader busy for longer than an election timeout with one slot is
    # deposed (32 MB took 0.7-1 s here). At most 64 MB: a slot holds a
    # coordinator's record and its own ops (2x this) in one 256 MB peer frame.
    max_txn_bytes: int = 16 * 1024 * 1024
    maxclients: int = 10_000
    # How many numbered databases SELECT may choose from (Redis's `databases`).
    databases: int = 16
    election_timeout_ms: int = 800
    heartbeat_ms: int = 100
    tick_ms: int = 10
    checkpoint_interval_ms: int = 5000
    log_retain_slots: int = 20_000
    log_retain_bytes: int = 64 * 1024 * 1024
    # Redis's client-output-buffer-limit per class: (hard bytes, soft bytes,
    # soft seconds), 0 = no limit. Redis leaves normal clients unlimited; a
    # leader must not grow without bound for a client that never reads, so
    # the normal class defaults to a hard 512 MB / soft 128 MB for 60 s.
    client_output_buffer_limit: dict = field(default_factory=lambda: {
        "normal": (512 << 20, 128 << 20, 60), "pubsub": (32 << 20, 8 << 20, 60),
    })
    client_query_buffer_limit: int = 1 << 30
    users: list = field(default_factory=list)  # ACL file lines: "user NAME rules..."
    aclfile: str | None = None  # ACL SAVE / ACL LOAD (relative paths from the config's directory)
    tls: Any = None  # makod.tls.TlsConfig when the config has a tls: section
    timeout: int = 0  # close a client idle this many seconds (0: never), as Redis's `timeout`
    # Redis's busy-reply-threshold (alias lua-time-limit): a script running
    # longer makes other clients get -BUSY, and SCRIPT/FUNCTION KILL stop it.
    busy_reply_threshold_ms: int = 5000
    # Redis's notify-keyspace-events (e.g. "KEA"): "" publishes none.
    notify_keyspace_events: str = ""
    # Each node's log (makod/logs.py): level, "text" or "json" lines, and
    # rotation (a file past log_max_mb moves to .1 .. .log_backups).
    log_level: str = "info"
    log_format: str = "text"
    log_max_mb: int = 64
    log_backups: int = 3
    # One-way delay added to every message between replicas in different
    # datacenters (WAN emulation for benchmarks). Kept for old configs: it is
    # the default link of ``links`` (below), which says more.
    inject_delay_ms: float = 0.0
    # Per pair of datacenters: one-way delay and jitter (makod/links.py).
    links: LinkModel = field(default_factory=LinkModel)
    # Where benchmark clients sit (one of the replicas' datacenters); None: nowhere in particular.
    client_datacenter: str | None = None
    # Shard leaders gather in this datacenter when they can (Mako's geo layout:
    # certification among leaders stays local, replication crosses the WAN).
    # Default: each shard's first replica's datacenter; "none" disables it.
    leader_datacenter: str | None = None
    # Python modules every makod imports at start to register stored
    # procedures; the config file's directory is on the import path.
    procedure_modules: list[str] = field(default_factory=list)
    source: str = "<embedded default>"
    raw: dict = field(default_factory=dict)
    retired_ids: list[int] = field(default_factory=list)  # removed replicas' ids: never reused

    @property
    def replicas(self) -> list[ReplicaConfig]:
        return [r for shard in self.shards for r in shard.replicas]

    def replica(self, name: str) -> ReplicaConfig:
        for r in self.replicas:
            if r.name == name:
                return r
        raise KeyError(name)

    def first_members(self) -> list[tuple[list[int], list[int]]]:
        """Each shard's first membership (voters, learners): what a replica with
        no checkpoint starts from. Replicas that joined later are not in it."""
        out = []
        for sh in self.shards:
            first = [r for r in sh.replicas if not r.joined]
            if not any(r.voter for r in first):
                # Every original voter was replaced: a replica starting with
                # no checkpoint then starts from the voters as they are.
                first = sh.replicas
            out.append(([r.node_id for r in first if r.voter], [r.node_id for r in first if not r.voter]))
        return out

    def topology(self) -> list[tuple[list[int], list[int]]]:
        """Every replica of each shard (voters, then the rest): whom to reach."""
        return [([r.node_id for r in sh.replicas if r.voter], [r.node_id for r in sh.replicas if not r.voter])
                for sh in self.shards]

    def set_replicas(self, other: "ClusterConfig") -> None:
        """Take ``other``'s replicas (MAKO TOPOLOGY RELOAD): the same shards
        and first slots, and perhaps shards added after them."""
        for mine, theirs in zip(self.shards, other.shards):
            mine.replicas = theirs.replicas
            mine.preferred_leader = theirs.preferred_leader
        self.shards.extend(other.shards[len(self.shards):])
        self.retired_ids = other.retired_ids
        self.__dict__.pop("_by_id", None)

    def find(self, node_id: int) -> ReplicaConfig | None:
        """The replica with this id; None for one this node has not heard of
        (added elsewhere, before MAKO TOPOLOGY RELOAD reached this node)."""
        try:
            return self.by_id(node_id)
        except KeyError:
            return None

    def by_id(self, node_id: int) -> ReplicaConfig:
        index = self.__dict__.get("_by_id")
        if index is None:  # built once: the layout does not change while a config lives
            index = self.__dict__["_by_id"] = {rep.node_id: rep for rep in self.replicas}
        return index[node_id]

    def preferred_leader(self, shard: int) -> int | None:
        """The replica of ``shard`` that should lead when it can (None: no preference)."""
        named = self.shards[shard].preferred_leader
        if named is not None:
            return self.replica(named).node_id
        if self.leader_datacenter == "none":
            return None
        replicas = [r for r in self.shards[shard].replicas if r.voter]
        dc = self.leader_datacenter or replicas[0].datacenter
        for rep in replicas:
            if rep.datacenter == dc:
                return rep.node_id
        return None

    def shard_of_slot(self, slot: int) -> int:
        for shard in self.shards:
            for lo, hi in shard.slots:
                if lo <= slot <= hi:
                    return shard.id
        raise AssertionError(f"slot {slot} is not covered")


# The default config's Prometheus endpoint of each replica: resp_port + this.
METRICS_PORT_OFFSET = 30000


def default_config_dict(shards: int = 2, replicas: int = 3, base_port: int = 7379, host: str = "127.0.0.1") -> dict:
    """The embedded default: ``shards`` x ``replicas`` on localhost, replica r in datacenter dc{r}.

    Every shard's replica 0 sits in dc0, so shard leaders start side by side
    (Mako's geo layout: 2PC between leaders stays local, replication crosses
    datacenters).
    """
    per = NUM_SLOTS // shards
    out_shards = []
    port = base_port
    for s in range(shards):
        lo = s * per
        hi = NUM_SLOTS - 1 if s == shards - 1 else (s + 1) * per - 1
        reps = []
        for r in range(replicas):
            reps.append(
                {
                    # Written out, so a replica added later never renumbers these.
                    "id": s * replicas + r,
                    "name": f"s{s}r{r}",
                    "host": host,
                    "resp_port": port,
                    "peer_port": port + 10000,
                    "datacenter": f"dc{r}",
                }
            )
            if port + METRICS_PORT_OFFSET <= 65535:
                reps[-1]["metrics_port"] = port + METRICS_PORT_OFFSET
            port += 1
        out_shards.append({"id": s, "slots": f"{lo}-{hi}", "replicas": reps})
    return {"cluster": "makodb", "shards": out_shards}


TLS_PORT_OFFSET = 20000


def _parse_tls(source: str, raw: Any) -> Any:
    if raw is None:
        return None
    from makod.tls import TlsConfig

    want = "a mapping with cert_file, key_file, ca_file and optionally auth_clients"
    if not isinstance(raw, dict):
        raise ConfigError(source, "tls", want, raw)
    base = os.path.dirname(os.path.abspath(source)) if not source.startswith("<") else os.getcwd()
    files = {}
    for key in raw:
        if key not in ("cert_file", "key_file", "ca_file", "auth_clients"):
            raise ConfigError(source, f"tls.{key}", "one of cert_file, key_file, ca_file, auth_clients", key)
    for key in ("cert_file", "key_file", "ca_file"):
        value = raw.get(key)
        if not isinstance(value, str) or not value:
            raise ConfigError(source, f"tls.{key}", "a file path", value, key in raw)
        path = os.path.join(base, value)
        if not os.path.isfile(path):
            raise ConfigError(source, f"tls.{key}", "a file that exists", path)
        files[key] = path
    auth = raw.get("auth_clients", "optional")
    if auth not in ("yes", "optional", "no"):
        raise ConfigError(source, "tls.auth_clients", "yes, optional or no", auth)
    return TlsConfig(files["cert_file"], files["key_file"], files["ca_file"], auth)


MIN_SECRET_CHARS = 16
SECRET_FILE_NAME = "cluster.secret"


def secret_file_path(cfg: ClusterConfig) -> str:
    """Where this config's cluster secret file is (whether or not it exists)."""
    base = os.path.dirname(os.path.abspath(cfg.source)) if not cfg.source.startswith("<") else os.getcwd()
    return os.path.join(base, cfg.cluster_secret_file or SECRET_FILE_NAME)


def load_cluster_secret(cfg: ClusterConfig) -> bytes | None:
    """The secret as bytes; None when the config gives none and no file exists.
    Raises ConfigError for a file that exists but cannot serve."""
    if cfg.cluster_secret:
        return cfg.cluster_secret.encode()
    path = secret_file_path(cfg)
    try:
        with open(path, "rb") as f:
            secret = f.read().strip()
    except FileNotFoundError:
        if cfg.cluster_secret_file:
            raise ConfigError(cfg.source, "cluster_secret_file", "a file that exists", path) from None
        return None
    except OSError as exc:
        raise ConfigError(path, "(file)", "a readable secret file", exc.strerror, True) from None
    if len(secret) < MIN_SECRET_CHARS:
        raise ConfigError(path, "(file)", f"a secret of at least {MIN_SECRET_CHARS} characters",
                          f"{len(secret)} characters", True)
    return secret


def write_secret_file(path: str) -> None:
    """A new random secret, readable by its owner only (0600 from the start)."""
    import secrets

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")


def load_config_file(path: str) -> ClusterConfig:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(path, "(file)", "a readable YAML file", exc.strerror, True) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise ConfigError(path, where, "valid YAML", getattr(exc, "problem", str(exc)), True) from None
    return parse_config(data, path)


def parse_config(data: Any, source: str) -> ClusterConfig:
    v = _Validator(source)
    if not isinstance(data, dict):
        raise ConfigError(source, "(top level)", "a mapping with 'cluster' and 'shards'", data)
    known = {
        "cluster", "cluster_id", "shards", "protocol", "ack", "bind", "requirepass", "proto_max_bulk_len", "max_txn_bytes", "maxclients", "databases",
        "election_timeout_ms", "heartbeat_ms", "tick_ms", "checkpoint_interval_ms", "log_retain_slots",
        "log_retain_bytes", "tls", "users", "aclfile", "client_output_buffer_limit", "client_query_buffer_limit", "timeout",
        "busy_reply_threshold_ms", "notify_keyspace_events", "log_level", "log_format", "log_max_mb", "log_backups",
        "inject_delay_ms", "leader_datacenter", "procedure_modules", "cluster_secret", "cluster_secret_file",
        "links", "client_datacenter", "retired_ids",
    }
    for key in data:
        if key not in known:
            raise ConfigError(source, str(key), f"one of the known fields ({', '.join(sorted(known))})", key)
    name = v.string(data, "cluster", default="makodb")
    shards_raw = data.get("shards")
    if not isinstance(shards_raw, list) or not shards_raw:
        raise ConfigError(source, "shards", "a non-empty list of shards", shards_raw)
    shards: list[ShardConfig] = []
    names: set[str] = set()
    endpoints: set[tuple[str, int]] = set()
    node_id = 0  # positions, the default ids
    ids: set[int] = set()
    retired_raw = data.get("retired_ids", [])
    if not isinstance(retired_raw, list) or not all(type(i) is int and 0 <= i <= 255 for i in retired_raw):
        raise ConfigError(source, "retired_ids", "a list of node ids (0-255) of removed replicas", retired_raw)
    retired = set(retired_raw)
    for i, shard_raw in enumerate(shards_raw):
        where = f"shards[{i}]"
        if not isinstance(shard_raw, dict):
            raise ConfigError(source, where, "a mapping with 'id', 'slots' and 'replicas'", shard_raw)
        sid = v.integer(shard_raw, "id", where, lo=0, hi=255, default=i)
        if sid != i:
            raise ConfigError(source, f"{where}.id", f"{i} (shards are numbered in order from 0)", sid)
        for key in shard_raw:
            if key not in ("id", "slots", "serving", "replicas", "preferred_leader"):
                raise ConfigError(source, f"{where}.{key}", "one of id, slots, serving, replicas, preferred_leader", key)
        slots = v.slot_ranges(shard_raw.get("slots"), f"{where}.slots")
        serving = None
        if "serving" in shard_raw:
            serving = [] if shard_raw["serving"] in ([], "") else v.slot_ranges(shard_raw["serving"], f"{where}.serving")
        reps_raw = shard_raw.get("replicas")
        if not isinstance(reps_raw, list) or not reps_raw:
            raise ConfigError(source, f"{where}.replicas", "a non-empty list of replicas", reps_raw)
        replicas = []
        for j, rep_raw in enumerate(reps_raw):
            rwhere = f"{where}.replicas[{j}]"
            if not isinstance(rep_raw, dict):
                raise ConfigError(source, rwhere, "a mapping with 'name', 'host', 'resp_port', 'peer_port'", rep_raw)
            for key in rep_raw:
                if key not in ("id", "name", "host", "resp_port", "peer_port", "tls_port", "metrics_port", "datacenter",
                               "role", "joined"):
                    raise ConfigError(
                        source, f"{rwhere}.{key}",
                        "one of id, name, host, resp_port, peer_port, tls_port, metrics_port, datacenter, role, joined",
                        key
                    )
            rname = v.string(rep_raw, "name", rwhere)
            if not rname.replace("-", "").replace("_", "").isalnum():
                raise ConfigError(source, f"{rwhere}.name", "letters, digits, '-' and '_' only", rname)
            if rname in names:
                raise ConfigError(source, f"{rwhere}.name", "a name no other replica has", rname)
            names.add(rname)
            host = v.string(rep_raw, "host", rwhere, default="127.0.0.1")
            resp_port = v.integer(rep_raw, "resp_port", rwhere, lo=1, hi=65535)
            peer_port = v.integer(rep_raw, "peer_port", rwhere, lo=1, hi=65535, default=resp_port + 10000)
            tls_port = v.integer(rep_raw, "tls_port", rwhere, lo=1, hi=65535, default=None)
            if tls_port is None and data.get("tls") is not None:
                tls_port = resp_port + TLS_PORT_OFFSET
                if tls_port > 65535:
                    raise ConfigError(source, f"{rwhere}.tls_port", "a port (resp_port + 20000 is past 65535)", None,
                                      False)
            metrics_port = v.integer(rep_raw, "metrics_port", rwhere, lo=1, hi=65535, default=None)
            for port, fname in ((resp_port, "resp_port"), (peer_port, "peer_port"), (tls_port, "tls_port"),
                                (metrics_port, "metrics_port")):
                if port is None:
                    continue
                if (host, port) in endpoints:
                    raise ConfigError(source, f"{rwhere}.{fname}", "a port no other endpoint on this host uses", port)
                endpoints.add((host, port))
            dc = v.string(rep_raw, "datacenter", rwhere, default=f"dc{j}")
            role = v.choice(rep_raw, "role", rwhere, ("voter", "learner"), default="voter")
            # Ballots are round * 256 + id; an id never changes, so a
            # replica added later cannot renumber the others (docs/MEMBERSHIP.md).
            rid = v.integer(rep_raw, "id", rwhere, lo=0, hi=255, default=node_id)
            if rid in ids:
                raise ConfigError(source, f"{rwhere}.id", "an id no other replica has", rid)
            if rid in retired:
                raise ConfigError(source, f"{rwhere}.id", "an id not in retired_ids (a removed replica's id is "
                                  "never reused)", rid)
            ids.add(rid)
            joined = rep_raw.get("joined", False)
            if not isinstance(joined, bool):
                raise ConfigError(source, f"{rwhere}.joined", "true or false", joined)
            replicas.append(ReplicaConfig(rname, rid, sid, host, resp_port, peer_port, dc, role == "voter",
                                          tls_port, metrics_port, joined))
            node_id += 1
        if not any(r.voter for r in replicas):
            raise ConfigError(source, f"{where}.replicas", "at least one replica with role voter", "only learners")
        preferred = v.string(shard_raw, "preferred_leader", where, default=None)
        if preferred is not None and preferred not in [r.name for r in replicas if r.voter]:
            raise ConfigError(source, f"{where}.preferred_leader", "the name of a voter of this shard", preferred)
        shards.append(ShardConfig(sid, slots, replicas, preferred, serving))
    if node_id > 255:
        raise ConfigError(source, "shards", "at most 255 replicas in the whole cluster", node_id)
    _check_slot_cover(source, shards)
    if any(shard.serving is not None for shard in shards):
        _check_slot_cover(source, shards, "serving")
    cfg = ClusterConfig(name=name, shards=shards, source=source, raw=copy.deepcopy(data),
                        cluster_id=v.string(data, "cluster_id", default=None))
    cfg.retired_ids = sorted(retired)
    cfg.protocol = v.choice(data, "protocol", "", PROTOCOLS, default=cfg.protocol)
    cfg.ack = v.choice(data, "ack", "", ACK_MODES, default=cfg.ack)
    cfg.bind = v.string(data, "bind", default=cfg.bind)
    req = data.get("requirepass")
    if req is not None and (not isinstance(req, str) or not req):
        raise ConfigError(source, "requirepass", "a non-empty string or null", req)
    cfg.requirepass = req
    secret = data.get("cluster_secret")
    if secret is not None and (not isinstance(secret, str) or len(secret) < MIN_SECRET_CHARS):
        raise ConfigError(source, "cluster_secret", f"a string of at least {MIN_SECRET_CHARS} characters", "<hidden>")
    cfg.cluster_secret = secret
    cfg.cluster_secret_file = v.string(data, "cluster_secret_file", default=None)
    if cfg.cluster_secret and cfg.cluster_secret_file:
        raise ConfigError(source, "cluster_secret_file", "absent when cluster_secret is given", cfg.cluster_secret_file)
    cfg.proto_max_bulk_len = v.integer(data, "proto_max_bulk_len", lo=1024, hi=1 << 40, default=cfg.proto_max_bulk_len)
    cfg.max_txn_bytes = v.integer(data, "max_txn_bytes", lo=1024, hi=MAX_TXN_BYTES_LIMIT, default=cfg.max_txn_bytes)
    cfg.maxclients = v.integer(data, "maxclients", lo=1, hi=1_000_000, default=cfg.maxclients)
    # Redis takes any positive int; a million is far past any real use and
    # keeps the per-db bookkeeping (INFO keyspace lines) bounded.
    cfg.databases = v.integer(data, "databases", lo=1, hi=1_000_000, default=cfg.databases)
    cfg.election_timeout_ms = v.integer(data, "election_timeout_ms", lo=10, hi=600_000, default=cfg.election_timeout_ms)
    cfg.heartbeat_ms = v.integer(data, "heartbeat_ms", lo=1, hi=60_000, default=cfg.heartbeat_ms)
    if cfg.heartbeat_ms * 2 > cfg.election_timeout_ms:
        raise ConfigError(source, "heartbeat_ms", f"at most half of election_timeout_ms ({cfg.election_timeout_ms})", cfg.heartbeat_ms)
    cfg.tick_ms = v.integer(data, "tick_ms", lo=1, hi=1000, default=cfg.tick_ms)
    cfg.checkpoint_interval_ms = v.integer(data, "checkpoint_interval_ms", lo=10, hi=3_600_000, default=cfg.checkpoint_interval_ms)
    cfg.log_retain_slots = v.integer(data, "log_retain_slots", lo=16, hi=100_000_000, default=cfg.log_retain_slots)
    cfg.log_retain_bytes = v.integer(data, "log_retain_bytes", lo=1 << 20, hi=1 << 40, default=cfg.log_retain_bytes)
    cobl = data.get("client_output_buffer_limit")
    if cobl is not None:
        want = "a mapping of class (normal, pubsub) to [hard bytes, soft bytes, soft seconds]"
        if not isinstance(cobl, dict):
            raise ConfigError(source, "client_output_buffer_limit", want, cobl)
        limits = dict(cfg.client_output_buffer_limit)
        for cls, triple in cobl.items():
            if cls not in limits:
                raise ConfigError(source, f"client_output_buffer_limit.{cls}", "normal or pubsub", cls)
            if (not isinstance(triple, list) or len(triple) != 3
                    or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in triple)):
                raise ConfigError(source, f"client_output_buffer_limit.{cls}",
                                  "[hard bytes, soft bytes, soft seconds], each an integer >= 0", triple)
            limits[cls] = tuple(triple)
        cfg.client_output_buffer_limit = limits
    cfg.client_query_buffer_limit = v.integer(data, "client_query_buffer_limit", lo=1 << 20, hi=1 << 40,
                                              default=cfg.client_query_buffer_limit)
    cfg.tls = _parse_tls(source, data.get("tls"))
    users = data.get("users", [])
    if not isinstance(users, list) or not all(isinstance(u, str) and u.split()[:1] == ["user"] for u in users):
        raise ConfigError(source, "users", "a list of ACL lines like 'user alice on >password ~* +@all'", users)
    cfg.users = users
    aclfile = v.string(data, "aclfile", default=None)
    if aclfile is not None and not source.startswith("<"):
        aclfile = os.path.join(os.path.dirname(os.path.abspath(source)), aclfile)
    cfg.aclfile = aclfile
    cfg.timeout = v.integer(data, "timeout", lo=0, hi=1 << 31, default=cfg.timeout)
    cfg.busy_reply_threshold_ms = v.integer(data, "busy_reply_threshold_ms", lo=0, hi=1 << 31,
                                            default=cfg.busy_reply_threshold_ms)
    events = v.string(data, "notify_keyspace_events", default="")
    try:
        cfg.notify_keyspace_events = notify.parse_flags(events or "")
    except ValueError:
        raise ConfigError(source, "notify_keyspace_events", "Redis's event classes (letters of 'Ag$lshzxeKEtmdn')",
                          events) from None
    cfg.inject_delay_ms = v.number(data, "inject_delay_ms", lo=0, hi=MAX_LINK_MS, default=cfg.inject_delay_ms)
    dcs = {r.datacenter for r in cfg.replicas}
    cfg.links = _parse_links(v, data, dcs, cfg.election_timeout_ms, cfg.inject_delay_ms)
    cfg.leader_datacenter = v.string(data, "leader_datacenter", default=None)
    if cfg.leader_datacenter is not None and cfg.leader_datacenter != "none":
        if cfg.leader_datacenter not in dcs:
            raise ConfigError(source, "leader_datacenter", f"one of the datacenters ({', '.join(sorted(dcs))}) or none",
                              cfg.leader_datacenter)
    cfg.client_datacenter = v.string(data, "client_datacenter", default=None)
    if cfg.client_datacenter is not None and cfg.client_datacenter not in dcs:
        raise ConfigError(source, "client_datacenter", f"one of the datacenters ({', '.join(sorted(dcs))})",
                          cfg.client_datacenter)
    cfg.procedure_modules = _module_names(source, data.get("procedure_modules", []))
    cfg.log_level = v.choice(data, "log_level", "", ("debug", "info", "warning", "error"), cfg.log_level)
    cfg.log_format = v.choice(data, "log_format", "", ("text", "json"), cfg.log_format)
    cfg.log_max_mb = v.integer(data, "log_max_mb", lo=1, hi=1 << 20, default=cfg.log_max_mb)
    cfg.log_backups = v.integer(data, "log_backups", lo=1, hi=1000, default=cfg.log_backups)
    return cfg


def _module_names(source: str, raw: Any) -> list[str]:
    if not isinstance(raw, list):
        raise ConfigError(source, "procedure_modules", "a list of Python module names", raw)
    for i, name in enumerate(raw):
        if not isinstance(name, str) or not all(part.isidentifier() for part in name.split(".")):
            raise ConfigError(source, f"procedure_modules[{i}]", "a dotted Python module name like myapp.procs", name)
    return list(raw)


def load_procedure_modules(cfg: ClusterConfig) -> None:
    """Import the config's procedure modules (they register themselves).

    Raises ConfigError naming the module when one cannot be imported, since
    a node that lacks a procedure its peers have would reject its calls.
    """
    import importlib
    import os
    import sys
    import traceback

    if cfg.source and os.path.isfile(cfg.source):
        here = os.path.dirname(os.path.abspath(cfg.source))
        if here not in sys.path:
            sys.path.insert(0, here)
    for i, name in enumerate(cfg.procedure_modules):
        try:
            importlib.import_module(name)
        except Exception as exc:  # any failure of user code: report it, do not start
            last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            where = f" at {last.filename}:{last.lineno}" if last else ""
            raise ConfigError(
                cfg.source, f"procedure_modules[{i}]", "a module that imports cleanly",
                f"{name} ({type(exc).__name__}: {exc}{where})",
            ) from None


def _check_slot_cover(source: str, shards: list[ShardConfig], field: str = "slots") -> None:
    ranges = sorted((lo, hi, shard.id) for shard in shards
                    for lo, hi in (shard.slots if field == "slots" else shard.current_slots))
    nxt = 0
    prev_owner = None
    for lo, hi, owner in ranges:
        if lo < nxt:
            raise ConfigError(
                source, f"shards[{owner}].{field}", f"ranges that do not overlap shard {prev_owner}'s", f"{lo}-{hi}"
            )
        if lo > nxt:
            raise ConfigError(source, f"shards[*].{field}", f"every hash slot 0-{NUM_SLOTS - 1} covered", f"slot {nxt} missing")
        nxt = hi + 1
        prev_owner = owner
    if nxt < NUM_SLOTS:
        raise ConfigError(source, f"shards[*].{field}", f"every hash slot 0-{NUM_SLOTS - 1} covered", f"slot {nxt} missing")


def dump_config(cfg: ClusterConfig) -> str:
    return yaml.safe_dump(cfg.raw, sort_keys=False)
