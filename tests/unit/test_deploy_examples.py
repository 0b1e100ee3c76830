"""examples/deploy: the cluster config parses, every compose service runs a
replica that config names with its own data volume, and the systemd unit
starts makod with the config and the instance name. (No Docker daemon or
systemd here: the files are checked, not run.)"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess

import yaml

from makod.config import parse_config

DEPLOY = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "deploy")


def _yaml(name: str):
    with open(os.path.join(DEPLOY, name)) as f:
        return yaml.safe_load(f)


def test_cluster_config_parses_for_three_hosts():
    cfg = parse_config(_yaml("cluster.yaml"), "cluster.yaml")
    assert cfg.bind == "0.0.0.0" and cfg.cluster_secret_file == "cluster.secret"
    assert [r.host for r in cfg.replicas] == ["mako1", "mako2", "mako3"]
    assert all(r.metrics_port for r in cfg.replicas)


def test_compose_runs_each_replica_once_with_its_own_volume():
    names = {r.name for r in parse_config(_yaml("cluster.yaml"), "cluster.yaml").replicas}
    services = _yaml("compose.yaml")["services"]
    nodes = [svc["command"][svc["command"].index("--node") + 1] for svc in services.values()]
    assert sorted(nodes) == sorted(names)
    assert set(services) == {"mako1", "mako2", "mako3"}, "service names are the config's hosts"
    data = [v for svc in services.values() for v in svc["volumes"] if v.endswith(":/data")]
    assert len(set(data)) == 3


def test_systemd_unit_starts_makod_for_its_instance():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(os.path.join(DEPLOY, "makod@.service"))
    start = unit["Service"]["ExecStart"]
    assert "makod --config /etc/makodb/cluster.yaml --node %i" in start and "--log-file" in start
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    if shutil.which("systemd-analyze"):
        out = subprocess.run(["systemd-analyze", "verify", os.path.join(DEPLOY, "makod@.service")],
                             capture_output=True, text=True, timeout=30)
        # Only the binary's absence here may be reported, never a syntax error.
        for line in (out.stderr + out.stdout).splitlines():
            assert "is not executable" in line or "No such file" in line or not line.strip(), line


def test_compose_check_script_is_valid_bash_and_checks_what_the_readme_says():
    import subprocess

    script = os.path.join(DEPLOY, "check-compose.sh")
    subprocess.run(["bash", "-n", script], check=True)
    with open(script) as f:
        text = f.read()
    for check in ("docker build", "up -d", "get hello", "/metrics", "docker kill", "docker start", "role"):
        assert check in text, check
