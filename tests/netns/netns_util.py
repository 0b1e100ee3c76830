"""Datacenters as Linux network namespaces, and a makodb cluster across them.

``Topology`` builds, per run (names carry the pid and a random suffix):

* one namespace per datacenter, ``<tag>dc<i>``, holding only ``lo`` and
  ``veth0`` (address 10.77.N.(10+i)/24), with ``tc netem`` delaying what
  leaves the datacenter;
* a hub namespace, ``<tag>hub``, holding the bridge every veth is a port of
  (its iptables are empty, so a firewall or br_netfilter in the root
  namespace never sees the bridged traffic);
* one veth from the root namespace to the hub, ``<tag>`` (10.77.N.1/24), so
  the test process itself is the client. That link's connected route for
  10.77.N.0/24 is the only thing added to the root namespace; N is a /24 no
  route or address of the root namespace touches.

``NetnsCluster`` runs one ``makod`` per replica with ``ip netns exec`` in its
datacenter's namespace, in makoctl's data dir layout (``cluster.yaml``,
``<node>/makod.pid``, ``<node>/makod.log``), so ``makoctl cluster status
--data-dir`` works on it from the root namespace too.

Both tear down everything they made and collect what failed instead of
stopping at the first error.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

import redis
import yaml
from redis.backoff import NoBackoff
from redis.retry import Retry

from makoctl import procs
from makoctl.cluster_setup import preferred_name
from makod.config import default_config_dict, load_config_file

SUBNET_PREFIX = "10.77"


class NetnsUnavailable(Exception):
    """Namespaces cannot be made here (the tests skip with this message)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


def _cap_net_admin() -> bool:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) & (1 << 12))  # CAP_NET_ADMIN
    except OSError:
        pass
    return os.geteuid() == 0


def netns_unavailable_reason() -> str | None:
    """Why namespaces cannot be made here, or None when they can."""
    if shutil.which("ip") is None:
        return "no 'ip' binary (apt-get install iproute2)"
    if os.geteuid() != 0:
        return "not root: creating network namespaces needs root"
    if not _cap_net_admin():
        return "no CAP_NET_ADMIN"
    probe = f"mkprobe{os.getpid()}{secrets.token_hex(2)}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"'ip netns add' failed: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def _used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network the root namespace has a route or an address in (default routes aside)."""
    nets = []
    routes = json.loads(_ip("-j", "-4", "route", "show", "table", "all").stdout or "[]")
    for r in routes:
        dst = r.get("dst", "")
        if dst and dst != "default":
            nets.append(ipaddress.ip_network(dst, strict=False))
    for link in json.loads(_ip("-j", "-4", "addr", "show").stdout or "[]"):
        for a in link.get("addr_info", []):
            nets.append(ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False))
    return nets


def pick_subnet() -> ipaddress.IPv4Network:
    """A 10.77.N.0/24 that nothing in the root namespace uses; N starts from
    the pid so parallel runs tend to pick different ones."""
    used = _used_networks()
    start = os.getpid() % 250
    for i in range(250):
        net = ipaddress.ip_network(f"{SUBNET_PREFIX}.{(start + i) % 250 + 1}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError(f"every {SUBNET_PREFIX}.N.0/24 overlaps a route or address of this machine")


class Topology:
    def __init__(self, datacenters: int = 3, one_way_ms: float = 5.0, jitter_ms: float = 1.0) -> None:
        self.datacenters = datacenters
        self.one_way_ms = one_way_ms
        self.jitter_ms = jitter_ms
        self.tag = f"mk{os.getpid()}{secrets.token_hex(1)}"  # <= 11 chars: interface names stay <= 15
        self.hub = f"{self.tag}hub"
        self.namespaces = [f"{self.tag}dc{i}" for i in range(datacenters)]
        self.root_link = self.tag
        self.subnet: ipaddress.IPv4Network | None = None
        self.client_addr = ""
        self.addrs: list[str] = []
        self.made_ns: list[str] = []
        self.made_root_link = False
        # "netem" once every datacenter link delays; None: this kernel has no
        # netem (the caller injects the delay another way).
        self.netem: str | None = None
        self.netem_error = ""

    def up(self) -> None:
        existing = set(_ip("netns", "list").stdout.split())
        if existing & {self.hub, *self.namespaces}:
            raise RuntimeError(f"namespaces named {self.tag}* already exist")
        self.subnet = pick_subnet()
        hosts = list(self.subnet.hosts())
        prefix = self.subnet.prefixlen
        self.client_addr = str(hosts[0])
        self.addrs = [str(hosts[9 + i]) for i in range(self.datacenters)]

        self._add_ns(self.hub)
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "link", "set", "br0", "up")
        _ip("-n", self.hub, "link", "set", "lo", "up")
        # The root namespace's end: the test's client.
        _ip("link", "add", self.root_link, "type", "veth", "peer", "name", "root", "netns", self.hub)
        self.made_root_link = True
        self._port(self.hub, "root")
        _ip("addr", "add", f"{self.client_addr}/{prefix}", "dev", self.root_link)
        _ip("link", "set", self.root_link, "up")
        for i, ns in enumerate(self.namespaces):
            self._add_ns(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("link", "add", "name", "veth0", "netns", ns, "type", "veth", "peer", "name", f"dc{i}", "netns", self.hub)
            self._port(self.hub, f"dc{i}")
            _ip("-n", ns, "addr", "add", f"{self.addrs[i]}/{prefix}", "dev", "veth0")
            _ip("-n", ns, "link", "set", "veth0", "up")
        self._netem()

    def _add_ns(self, name: str) -> None:
        _ip("netns", "add", name)
        self.made_ns.append(name)

    @staticmethod
    def _port(hub: str, dev: str) -> None:
        _ip("-n", hub, "link", "set", dev, "master", "br0")
        _ip("-n", hub, "link", "set", dev, "up")

    def _netem(self) -> None:
        """Delay everything leaving each datacenter by one_way_ms +- jitter_ms:
        datacenter to datacenter is one such delay each way, the root
        namespace to a datacenter one delay per round trip (on the reply)."""
        if shutil.which("tc") is None:
            raise RuntimeError("no 'tc' binary (apt-get install iproute2)")
        for ns in self.namespaces:
            proc = subprocess.run(
                ["tc", "-n", ns, "qdisc", "add", "dev", "veth0", "root", "netem",
                 "delay", f"{self.one_way_ms}ms", f"{self.jitter_ms}ms"],
                capture_output=True, text=True, timeout=20,
            )
            if proc.returncode != 0:
                if "unknown" in proc.stderr.lower():  # the kernel has no sch_netem
                    self.netem_error = proc.stderr.strip()
                    return
                raise RuntimeError(f"tc netem in {ns} exited {proc.returncode}: {proc.stderr.strip()}")
        self.netem = "netem"

    def exec_prefix(self, dc: int) -> list[str]:
        return ["ip", "netns", "exec", self.namespaces[dc]]

    def down(self) -> list[str]:
        """Delete every namespace and link this topology made; the errors, if any."""
        errors = []
        for ns in reversed(self.made_ns):
            proc = _ip("netns", "del", ns, check=False)
            if proc.returncode != 0:
                errors.append(f"ip netns del {ns}: {proc.stderr.strip()}")
        self.made_ns = []
        if self.made_root_link:
            # Normally gone with its peer in the hub; left over only if that failed.
            if _ip("link", "show", self.root_link, check=False).returncode == 0:
                proc = _ip("link", "del", self.root_link, check=False)
                if proc.returncode != 0:
                    errors.append(f"ip link del {self.root_link}: {proc.stderr.strip()}")
            self.made_root_link = False
        return errors

    def leftovers(self) -> list[str]:
        """Anything of this topology still present (for the test's own check)."""
        left = [ns for ns in _ip("netns", "list").stdout.split() if ns.startswith(self.tag)]
        if _ip("link", "show", self.root_link, check=False).returncode == 0:
            left.append(f"link {self.root_link}")
        return left


def client(host: str, port: int, timeout: float = 10) -> redis.Redis:
    """A client that never resends a command on its own: an error means the
    write may or may not have happened, and the tests count it as unknown."""
    return redis.Redis(host=host, port=port, socket_timeout=timeout, socket_connect_timeout=timeout,
                       retry=Retry(NoBackoff(), 0))


class NetnsCluster:
    """``shards`` x one replica per datacenter; replica r of every shard runs in dc r."""

    BASE_PORT = 7379  # each namespace has its own ports: nothing of the machine's can clash

    def __init__(self, topo: Topology, data_dir: str, shards: int = 2, extra: dict[str, Any] | None = None) -> None:
        self.topo = topo
        self.data_dir = str(data_dir)
        self.shards = shards
        self.cfg_path = os.path.join(self.data_dir, procs.CONFIG_NAME)
        raw = default_config_dict(shards, topo.datacenters, self.BASE_PORT)
        self.dc_of: dict[str, int] = {}
        for shard in raw["shards"]:
            for r, rep in enumerate(shard["replicas"]):
                rep["host"] = topo.addrs[r]
                rep["datacenter"] = f"dc{r}"
                self.dc_of[rep["name"]] = r
        # RESP listens on the cluster-wide `bind`, so one address cannot be
        # given per replica: 0.0.0.0 inside a namespace is that namespace's
        # veth0 and lo only. Peer links listen on each replica's own host.
        raw["bind"] = "0.0.0.0"
        raw["cluster_secret"] = secrets.token_hex(16)
        raw.update(extra or {})
        os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
        with open(self.cfg_path, "w") as f:
            yaml.safe_dump(raw, f, sort_keys=False)
        self.cfg = load_config_file(self.cfg_path)
        self.procs: dict[str, subprocess.Popen] = {}

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.cfg.replicas]

    def start(self) -> None:
        for rep in self.cfg.replicas:
            self.start_node(rep.name)

    def start_node(self, name: str) -> None:
        os.makedirs(procs.node_dir(self.data_dir, name), exist_ok=True)
        with open(procs.log_path(self.data_dir, name), "ab") as log:
            # `ip netns exec` execs the command: the pid is makod's own.
            proc = subprocess.Popen(
                [*self.topo.exec_prefix(self.dc_of[name]), sys.executable, "-m", "makod.main",
                 "--config", self.cfg_path, "--node", name, "--data-dir", self.data_dir],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True,
            )
        self.procs[name] = proc
        with open(procs.pid_path(self.data_dir, name), "w") as f:
            f.write(str(proc.pid))

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop(self) -> list[str]:
        """SIGKILL every node this cluster started and reap it; the ones that would not die."""
        stuck = []
        for name, proc in self.procs.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                stuck.append(f"{name} (pid {proc.pid})")
        return stuck

    # -- reading the cluster from the root namespace -------------------------------------------
    def client(self, name: str, timeout: float = 10) -> redis.Redis:
        rep = self.cfg.replica(name)
        return client(rep.host, rep.resp_port, timeout)

    def states(self) -> list[procs.NodeState]:
        return procs.cluster_states(self.cfg, self.data_dir, timeout_s=1.0)

    def leader(self, shard: int, timeout: float = 20, exclude: frozenset[str] = frozenset()) -> str:
        """The name of ``shard``'s serving leader, once there is one (not one of ``exclude``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for s in self.states():
                if (s.shard == shard and s.role == "leader" and s.status and s.status.get("serving")
                        and s.name not in exclude):
                    return s.name
            time.sleep(0.1)
        raise AssertionError(f"shard {shard} has no serving leader after {timeout}s\n{self.logs()}")

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead:
                raise AssertionError(f"{dead[0]} exited during startup\n{self.logs([dead[0]])}")
            states = self.states()
            up = sum(1 for s in states if s.status is not None)
            # Led by the preferred replica, as `makoctl cluster start` waits
            # for: otherwise it takes leadership back during a test.
            leaders = {s.shard for s in states if s.role == "leader" and s.status and s.status.get("serving")
                       and preferred_name(self.cfg, s.shard) in (None, s.name)}
            if up == len(states) and len(leaders) == self.shards:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"cluster not ready after {timeout}s: {up}/{len(states)} nodes answering, "
                                     f"{len(leaders)}/{self.shards} shards led by their preferred replica\n{self.logs()}")
            time.sleep(0.1)

    def logs(self, names: list[str] | None = None, lines: int = 15) -> str:
        return "\n".join(f"--- {n} ---\n{procs.log_tail(self.data_dir, n, lines)}" for n in names or self.names)
