"""TLS with real certificates: `makoctl cluster start --tls`, redis-cli --tls and
redis-py ssl=True on the TLS port, peer links over mutual TLS."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess

import pytest
import redis

from makod.config import load_config_file
from makoctl.certs import make_cluster_certs
from tests.integration.cluster_util import free_port_block, kill_leftover_nodes, makoctl, wait_for


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("tls") / "data")
    base = free_port_block(3)
    try:
        makoctl("cluster", "start", "--data-dir", data_dir, "--shards", "1", "--replicas", "3",
                "--base-port", str(base), "--tls", "--timeout", "60", timeout=120)
        yield data_dir, load_config_file(os.path.join(data_dir, "cluster.yaml"))
    finally:  # also when the start failed halfway: no node outlives the test
        makoctl("cluster", "stop", "--data-dir", data_dir, check=False)
        kill_leftover_nodes(data_dir)


def _tls_client(data_dir: str, port: int, with_cert: bool = True, **kwargs) -> redis.Redis:
    tls = os.path.join(data_dir, "tls")
    extra = {"ssl_certfile": f"{tls}/client.crt", "ssl_keyfile": f"{tls}/client.key"} if with_cert else {}
    return redis.Redis(port=port, ssl=True, ssl_ca_certs=f"{tls}/ca.crt", socket_timeout=15, **extra, **kwargs)


def _refused(action) -> bool:
    """True when the other side closed or reset the connection, or TLS failed."""
    try:
        return action() == b""
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return True


def test_certificates_are_private(tls_cluster):
    data_dir, _ = tls_cluster
    tls = os.path.join(data_dir, "tls")
    assert os.stat(tls).st_mode & 0o777 == 0o700
    for key in ("node.key", "client.key"):
        assert os.stat(os.path.join(tls, key)).st_mode & 0o777 == 0o600


def test_redis_py_over_tls_reads_what_it_wrote_through_every_node(tls_cluster):
    data_dir, cfg = tls_cluster
    ports = [r.tls_port for r in cfg.replicas]
    assert all(p == r.resp_port + 20000 for p, r in zip(ports, cfg.replicas))
    first = _tls_client(data_dir, ports[0])
    assert first.set(b"tls-key", b"over tls") is True
    for port in ports:  # replicated over mutual-TLS peer links
        wait_for(lambda: _tls_client(data_dir, port).get(b"tls-key") == b"over tls", timeout=15,
                 what=f"the value through {port}")
    # auth_clients defaults to optional: a client without a certificate is served too.
    assert _tls_client(data_dir, ports[1], with_cert=False).ping() is True
    # The plain port is still there beside it.
    assert redis.Redis(port=cfg.replicas[0].resp_port).get(b"tls-key") == b"over tls"


def test_redis_cli_over_tls(tls_cluster):
    data_dir, cfg = tls_cluster
    tls = os.path.join(data_dir, "tls")
    base = ["redis-cli", "--tls", "--cacert", f"{tls}/ca.crt", "--cert", f"{tls}/client.crt",
            "--key", f"{tls}/client.key", "-p", str(cfg.replicas[0].tls_port)]
    out = subprocess.run(base + ["SET", "cli-key", "cli-value"], capture_output=True, text=True, timeout=20)
    assert out.stdout.strip() == "OK", out
    out = subprocess.run(base + ["GET", "cli-key"], capture_output=True, text=True, timeout=20)
    assert out.stdout.strip() == "cli-value", out


def test_cluster_slots_name_tls_ports_to_tls_clients(tls_cluster):
    data_dir, cfg = tls_cluster
    tls_ports = {r.tls_port for r in cfg.replicas}
    over_tls = _tls_client(data_dir, cfg.replicas[0].tls_port).execute_command("CLUSTER SLOTS")
    assert {node[1] for node in over_tls[0][2:]} == tls_ports
    plain = redis.Redis(port=cfg.replicas[0].resp_port).execute_command("CLUSTER SLOTS")
    assert {node[1] for node in plain[0][2:]} == {r.resp_port for r in cfg.replicas}


def test_a_server_certificate_from_another_ca_is_rejected_by_the_client(tls_cluster, tmp_path):
    data_dir, cfg = tls_cluster
    other = make_cluster_certs(str(tmp_path / "other"), ["127.0.0.1"])
    client = redis.Redis(port=cfg.replicas[0].tls_port, ssl=True, ssl_ca_certs=other["ca"], socket_timeout=10)
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        client.ping()


def test_peer_port_requires_a_certificate_from_the_cluster_ca(tls_cluster, tmp_path):
    data_dir, cfg = tls_cluster
    peer_port = cfg.replicas[0].peer_port
    # Plain TCP: not a TLS record, the link is closed.
    with socket.create_connection(("127.0.0.1", peer_port), timeout=5) as s:
        s.sendall(b"\x00\x00\x00\x10MAKOPEER1-hello!")
        assert _refused(lambda: s.recv(100))
    # A certificate signed by another CA: the handshake fails (under TLS 1.3 the
    # server's verdict arrives as an alert on the first read).
    other = make_cluster_certs(str(tmp_path / "other"), ["127.0.0.1"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(other["node_cert"], other["node_key"])
    with socket.create_connection(("127.0.0.1", peer_port), timeout=5) as raw:
        def talk() -> bytes:
            with ctx.wrap_socket(raw) as tls_sock:
                tls_sock.sendall(b"\x00\x00\x00\x1bMAKOPEER1")
                return tls_sock.recv(100)
        assert _refused(talk)
    # The cluster is unharmed.
    assert _tls_client(data_dir, cfg.replicas[0].tls_port).get(b"tls-key") in (b"over tls", None)
    assert redis.Redis(port=cfg.replicas[0].resp_port).ping() is True


def test_bad_tls_files_are_one_clear_line(tmp_path):
    import sys

    import yaml

    from makod.config import ConfigError, default_config_dict, parse_config

    data = default_config_dict(1, 1, free_port_block(1))
    data["tls"] = {"cert_file": "missing.crt", "key_file": "k", "ca_file": "c"}
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"tls.cert_file: expected a file that exists"):
        parse_config(data, str(path))
    for name in ("bad.crt", "bad.key", "bad-ca.crt"):
        (tmp_path / name).write_text("not a PEM file\n")
    data["tls"] = {"cert_file": "bad.crt", "key_file": "bad.key", "ca_file": "bad-ca.crt"}
    path.write_text(yaml.safe_dump(data))
    proc = subprocess.run([sys.executable, "-m", "makod.main", "--config", str(path), "--node", "s0r0"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "tls: cannot use the certificate, key or CA files" in proc.stderr
    assert "Traceback" not in proc.stderr
