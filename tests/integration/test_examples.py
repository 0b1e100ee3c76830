"""The examples run as examples/README.md says, on fresh clusters."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import yaml

from makod.core.slots import key_slot
from tests.integration.cluster_util import Cluster, free_port_block, makoctl

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")


def _run_example(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, script), *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )


def test_bank_transfer_example_keeps_the_total(tmp_path):
    cluster = Cluster(tmp_path / "d", shards=2, replicas=1)
    cluster.start()
    try:
        proc = _run_example("bank_transfer.py", "--port", str(cluster.port()), "--transfers", "200")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "total 2000 (expected 2000)" in proc.stdout
        # The accounts really are spread over both shards.
        c = cluster.client()
        assert c.exists(*[f"example:acct:{i}" for i in range(20)]) == 20
        owners = {key_slot(f"example:acct:{i}".encode()) < 8192 for i in range(20)}
        assert owners == {True, False}
    finally:
        cluster.stop()


def test_shop_example_with_its_own_config_and_procedures(tmp_path):
    with open(os.path.join(EXAMPLES, "shop_cluster.yaml")) as f:
        data = yaml.safe_load(f)
    base = free_port_block(6)
    replicas = [rep for shard in data["shards"] for rep in shard["replicas"]]
    for i, rep in enumerate(replicas):
        rep["resp_port"], rep["peer_port"] = base + i, base + 10000 + i
    config_path = tmp_path / "shop_cluster.yaml"
    config_path.write_text(yaml.safe_dump(data))
    data_dir = tmp_path / "shop-data"
    data_dir.mkdir()
    shutil.copy(os.path.join(EXAMPLES, "shop_procs.py"), data_dir)
    makoctl("cluster", "start", "--data-dir", str(data_dir), "--config", str(config_path), timeout=120)
    try:
        proc = _run_example("shop_client.py", "--port", str(base))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "refused: out of stock: fig" in proc.stdout
        assert "stock: {'apple': 3, 'fig': 1, 'pear': 1}" in proc.stdout
    finally:
        makoctl("cluster", "stop", "--data-dir", str(data_dir), check=False, timeout=60)
