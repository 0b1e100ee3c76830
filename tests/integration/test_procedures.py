"""A cluster's own stored procedures (config ``procedure_modules``), on real
processes: they run as transactions on one shard and across shards, and a
procedure that raises, stores what msgpack cannot encode or returns such a
value fails its own transaction with an error (writes undone), never the
server.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import msgpack
import pytest
import redis
import yaml

from makod.config import ConfigError, default_config_dict, parse_config
from makod.core.slots import key_slot
from tests.integration.cluster_util import Cluster

USER_MODULE = textwrap.dedent(
    '''
    from makod.core.procedures import procedure

    @procedure("user.add", footprint=lambda a: list(a["keys"]))
    def add(tx, args):
        out = []
        for key in args["keys"]:
            value = (tx.get(key) or 0) + args["by"]
            tx.put(key, value)
            out.append(value)
        return out

    @procedure("user.buggy", footprint=lambda a: list(a["keys"]))
    def buggy(tx, args):
        for key in args["keys"]:
            tx.put(key, 1)
        return 1 // 0

    @procedure("user.bad_value", footprint=lambda a: [a["key"]])
    def bad_value(tx, args):
        tx.put(args["key"], {1, 2, 3})

    @procedure("user.bad_result", footprint=lambda a: [a["key"]])
    def bad_result(tx, args):
        tx.put(args["key"], 7)
        return object()
    '''
)


def _keys_on_both_shards() -> tuple[bytes, bytes]:
    a = next(f"pa{i}".encode() for i in range(1000) if key_slot(f"pa{i}".encode()) < 8192)
    b = next(f"pb{i}".encode() for i in range(1000) if key_slot(f"pb{i}".encode()) >= 8192)
    return a, b


def _call(c: redis.Redis, name: str, args) -> object:
    return msgpack.unpackb(c.execute_command("MAKO", "CALL", name, msgpack.packb(args, use_bin_type=True)), raw=False)


def test_user_procedures_run_and_fail_cleanly(tmp_path):
    data_dir = tmp_path / "d"
    data_dir.mkdir()
    # Beside the cluster.yaml makod reads, so it is on makod's import path.
    (data_dir / "userprocs.py").write_text(USER_MODULE)
    cluster = Cluster(data_dir, shards=2, replicas=1, config={"procedure_modules": ["userprocs"]})
    cluster.start()
    try:
        c = cluster.client()
        names = [n.decode() for n in c.execute_command("MAKO", "PROCEDURES")]
        assert {"user.add", "user.buggy", "user.bad_value", "user.bad_result"} <= set(names)
        a, b = _keys_on_both_shards()
        assert _call(c, "user.add", {"keys": [a], "by": 5}) == [5]  # one shard
        assert _call(c, "user.add", {"keys": [a, b], "by": 2}) == [7, 2]  # across shards
        # On one shard (run at its leader) and across two (run by the
        # coordinator): both paths undo what the failed run wrote.
        for keys in ([a + b":new"], [a + b":n1", b + b":n2"]):
            with pytest.raises(redis.ResponseError) as err:
                _call(c, "user.buggy", {"keys": keys})
            assert str(err.value).startswith("procedure 'user.buggy' failed: ZeroDivisionError")
            assert all(c.exists(k) == 0 for k in keys)
        with pytest.raises(redis.ResponseError, match=r"failed: ProcedureFailed: cannot store set value"):
            _call(c, "user.bad_value", {"key": b"bv"})
        with pytest.raises(redis.ResponseError, match=r"'user.bad_result' failed: TypeError"):
            _call(c, "user.bad_result", {"key": b"br"})
        assert c.exists(b"bv", b"br") == 0
        # Nothing else moved, and the server still serves.
        assert _call(c, "user.add", {"keys": [a, b], "by": 0}) == [7, 2]
        assert c.ping() is True
        assert c.dbsize() == 2
    finally:
        cluster.stop()


def test_procedure_module_that_fails_to_import_stops_makod_with_the_field(tmp_path):
    data = default_config_dict(1, 1, 23456)
    data["procedure_modules"] = ["makodb_no_such_module_here"]
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(data))
    proc = subprocess.run(
        [sys.executable, "-m", "makod.main", "--config", str(path), "--node", "s0r0"],
        capture_output=True, text=True, timeout=60, env={**os.environ},
    )
    assert proc.returncode == 2
    assert f"{path}: procedure_modules[0]: expected a module that imports cleanly" in proc.stderr
    assert "ModuleNotFoundError" in proc.stderr


@pytest.mark.parametrize(
    "value, field",
    [("userprocs", "procedure_modules"), ([3], "procedure_modules[0]"), (["bad name"], "procedure_modules[0]")],
)
def test_procedure_modules_field_is_validated(value, field):
    data = default_config_dict(1, 1)
    data["procedure_modules"] = value
    with pytest.raises(ConfigError) as err:
        parse_config(data, "x.yaml")
    assert err.value.path == field


def test_redis_cli_calls_a_procedure_with_json_arguments(fresh_single):
    import json as _json
    import subprocess

    def cli(*args: str) -> str:
        return subprocess.run(["redis-cli", "-p", str(fresh_single.port()), *args], capture_output=True, text=True,
                              timeout=20).stdout.strip()

    assert cli("MAKO", "CALL", "bank.open", "JSON", '{"accounts": {"ann": 100, "ben": 5}}') == "2"
    assert _json.loads(cli("MAKO", "CALL", "bank.transfer", "JSON", '{"from": "ann", "to": "ben", "amount": 30}')) \
        == [70, 35]
    assert cli("MAKO", "CALL", "bank.total", "JSON", "null") == "105"
    assert cli("MAKO", "CALL", "bank.total", "JSON", "{bad").startswith("ERR MAKO CALL JSON arguments do not parse")
    assert cli("MAKO", "CALL", "bank.transfer", "JSON", '{"from": "ann", "to": "ben", "amount": 999}').startswith(
        "ABORT")
