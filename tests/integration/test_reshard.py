"""Moving slots between shards on real processes (docs/RESHARDING.md):
``makoctl cluster reshard`` moves every slot of shard 0 to shard 1 and back
again, while cross-shard MULTI/EXEC bank transfers and counters run, and the
source shard's only replica is SIGKILLed mid-move and restarted from its
LMDB files. No acknowledged transfer is lost or applied twice, balances keep
their total, no read ever goes back in time (a key served by a shard that
no longer holds it would), and both shards end with what their tables say."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import redis
import yaml

from makod.kv.hashslot import key_slot
from tests.integration.bank_load import BankLoad, client
from tests.integration.cluster_util import makoctl, wait_for

# Accounts and counters over many slots of both shards.
ACCOUNTS = [f"acct{i}" for i in range(16)]
COUNTERS = [f"ctr{i}" for i in range(8)]
INITIAL = 100
BULK = 1500  # values of 0-299 bytes, so that each chunk takes several batches


def _reshard(cluster, slots: str, to: int, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "makoctl.cli", "cluster", "reshard", "--slots", slots, "--to", str(to),
         "--chunk", "2048", "--batch", "50", "--data-dir", cluster.data_dir, "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_slots_move_back_and_forth_under_transfers_and_a_kill(make_cluster):
    cluster = make_cluster(shards=2, replicas=1)
    ports = list(cluster.ports.values())
    assert {key_slot(a.encode()) < 8192 for a in ACCOUNTS} == {True, False}  # both shards hold accounts
    cluster.client().mset({a: INITIAL for a in ACCOUNTS})
    cluster.client().mset({f"bulk{i}": "x" * (i % 300) for i in range(BULK)})
    _bad_steps_get_clear_errors(cluster)
    _watch_sees_a_move(cluster)
    load = BankLoad(ports, ACCOUNTS, COUNTERS).start()
    try:
        load.wait_more(20, "transfers before the moves")
        # Every slot of shard 0 to shard 1, its only replica SIGKILLed mid-way.
        move = _reshard(cluster, "0-8191", 1)

        def frozen() -> bool:
            with client(cluster.port("s0r0")) as r:
                return b'"frozen"' in r.execute_command("MAKO", "SLOTS")

        wait_for(frozen, timeout=30, interval=0.01, what="a chunk to be frozen at shard 0")
        time.sleep(0.2)  # exporting
        cluster.kill("s0r0")
        time.sleep(0.5)
        cluster.restart("s0r0")
        out, err = move.communicate(timeout=150)
        if move.returncode != 0:
            # The kill may have landed between steps the rerun finishes.
            out = makoctl("cluster", "reshard", "--slots", "0-8191", "--to", "1", "--data-dir", cluster.data_dir,
                          "--json", timeout=150).stdout
        moved = json.loads(out.strip().splitlines()[-1])
        assert moved["serving"] == {"0": [], "1": ["0-16383"]}, (moved, err)
        load.wait_more(20, "transfers with one shard holding every slot")
        _tables_agree(cluster, {0: [], 1: [(0, 16383)]})

        # And back, in two runs; makoctl itself SIGKILLed mid-way through the
        # first, whose rerun finishes the chunk it left frozen.
        move = _reshard(cluster, "0-4095", 0)

        def frozen1() -> bool:
            with client(cluster.port("s1r0")) as r:
                return b'"frozen"' in r.execute_command("MAKO", "SLOTS")

        wait_for(frozen1, timeout=30, interval=0.01, what="a chunk to be frozen at shard 1")
        move.kill()
        move.communicate(timeout=30)
        proc = makoctl("cluster", "reshard", "--slots", "0-4095", "--to", "0", "--data-dir", cluster.data_dir,
                       timeout=150)
        assert "note: finished moving slots" in proc.stderr, proc.stderr
        load.wait_more(20, "transfers after moving 0-4095 back")
        proc = makoctl("cluster", "reshard", "--slots", "0-8191", "--to", "0", "--chunk", "2048",
                       "--data-dir", cluster.data_dir, "--json", timeout=150)
        assert [m["slots"] for m in json.loads(proc.stdout.strip().splitlines()[-1])["moved"]] == [
            "4096-6143", "6144-8191"]  # 0-4095 were shard 0's already
        load.wait_more(20, "transfers after moving 4096-8191 back")
    finally:
        load.stop()

    with open(os.path.join(cluster.data_dir, "cluster.yaml")) as f:
        raw = yaml.safe_load(f)
    assert [s["serving"] for s in raw["shards"]] == [["0-8191"], ["8192-16383"]]
    assert [s["slots"] for s in raw["shards"]] == ["0-8191", "8192-16383"]  # where each log began
    _tables_agree(cluster, {0: [(0, 8191)], 1: [(8192, 16383)]})
    c = redis.Redis(port=ports[0], socket_timeout=30, decode_responses=True)
    expected = load.check(c)
    assert [c.strlen(f"bulk{i}") for i in range(BULK)] == [i % 300 for i in range(BULK)]
    # Each shard holds exactly its own slots' keys: nothing left behind.
    assert c.dbsize() == len(ACCOUNTS) + BULK + 3 + sum(c.exists(k) for k in COUNTERS)
    for port in ports:
        with redis.Redis(port=port, decode_responses=True) as r:
            assert json.loads(r.execute_command("MAKO", "SLOTMAP"))["moving"] is False
    # After a full restart the cluster serves from its files, slots where they were.
    makoctl("cluster", "stop", "--data-dir", cluster.data_dir)
    makoctl("cluster", "start", "--data-dir", cluster.data_dir, timeout=90)
    c = redis.Redis(port=ports[1], socket_timeout=30, decode_responses=True)
    assert dict(zip(ACCOUNTS, map(int, c.mget(ACCOUNTS)))) == expected
    _tables_agree(cluster, {0: [(0, 8191)], 1: [(8192, 16383)]})


def _watch_sees_a_move(cluster) -> None:
    """A key WATCHed before its slot moved counts as touched (as a MIGRATE'd
    key does in Redis): versions read after a move never equal one read
    before, though the value is the same."""
    c = cluster.client()
    key = "w{acct0}"
    slot = key_slot(b"acct0")
    c.set(key, "v")
    pipe = c.pipeline(transaction=True)
    pipe.watch(key)
    assert pipe.get(key) == b"v"
    makoctl("cluster", "reshard", "--slots", str(slot), "--to", "1" if slot < 8192 else "0",
            "--data-dir", cluster.data_dir)
    pipe.multi()
    pipe.set(key, "after")
    try:
        pipe.execute()
        raise AssertionError("EXEC ran though the watched key's slot moved")
    except redis.WatchError:
        pass
    assert c.get(key) == b"v"
    # Unwatched, the same transaction runs where the slot is now.
    assert c.pipeline(transaction=True).set(key, "after").get(key).execute() == [True, b"after"]
    makoctl("cluster", "reshard", "--slots", str(slot), "--to", "0" if slot < 8192 else "1",
            "--data-dir", cluster.data_dir)
    assert c.get(key) == b"after"
    c.delete(key)


def _tables_agree(cluster, owned: dict[int, list[tuple[int, int]]]) -> None:
    for shard, port in enumerate(cluster.ports.values()):
        with redis.Redis(port=port, socket_timeout=10, decode_responses=True) as r:
            shown = json.loads(r.execute_command("MAKO", "SLOTS"))
        got: list[tuple[int, int]] = []
        for e in shown["table"]:
            if e["state"] == "owned":
                if got and got[-1][1] == e["from"] - 1:
                    got[-1] = (got[-1][0], e["to"])
                else:
                    got.append((e["from"], e["to"]))
        assert got == owned[shard], (shard, shown)
        assert all(e["state"] in ("owned", "away") for e in shown["table"]), shown


def _bad_steps_get_clear_errors(cluster) -> None:
    port = cluster.port("s0r0")

    def error(*args) -> str:
        with client(port) as c:
            try:
                c.execute_command(*args)
            except redis.ResponseError as exc:
                return str(exc)
        raise AssertionError(f"{args} did not fail")

    assert error("MAKO", "SLOTS", "FREEZE", "0", "10", "0", "7") == (
        "invalid shard '0': name another shard of the cluster than this one (0)")
    assert error("MAKO", "SLOTS", "FREEZE", "0", "16384", "1", "7") == (
        "invalid slot '16384': a slot is an integer from 0 to 16383")
    assert error("MAKO", "SLOTS", "FREEZE", "10", "0", "1", "7") == (
        "invalid slot range 10-0: the first slot must not be above the last")
    assert error("MAKO", "SLOTS", "FREEZE", "0", "10", "1", "0") == (
        "invalid move id '0': a move id is an integer from 1 to 2^62-1")
    assert error("MAKO", "SLOTS", "FREEZE", "8000", "9000", "1", "7") == (
        "slots 8000-9000 of shard 0 are not listed, owned, not owned")
    assert error("MAKO", "SLOTS", "OWN", "8000", "9000", "7") == (
        "slots 8000-9000 of shard 0 are not listed, owned, not importing for move 7")
    assert error("MAKO", "SLOTS", "EXPORT", "0", "10", "7") == "slots 0-10 of shard 0 are owned, not frozen by move 7"
    assert error("MAKO", "SLOTS", "IMPORT", "0", "10", "1", "7", "k") == "IMPORT takes key and record pairs"
    assert error("MAKO", "SLOTS", "MOVE", "0") == (
        "unknown MAKO SLOTS step 'MOVE' (SHOW, IMPORTING, FREEZE, EXPORT, IMPORT, OWN, DROP, UNFREEZE)")
    assert error("MAKO", "SLOTS", "OWN", "0", "10") == "wrong number of arguments for MAKO SLOTS OWN"
    assert error("MAKO", "ROUTE", "0", "x", "1") == "value is not an integer or out of range"
    # An import of a damaged record, or a key of another slot, changes nothing.
    port1 = cluster.port("s1r0")
    with client(port1) as c:
        assert c.execute_command("MAKO", "SLOTS", "IMPORTING", "0", "10", "0", "7") == b"OK"
        for args, text in [
            (("k", b"garbage"), "an imported key is not in slots 0-10"),
            ((b"\xff" * 600, b"x"), "an imported key is not in slots 0-10"),
        ]:
            try:
                c.execute_command("MAKO", "SLOTS", "IMPORT", "0", "10", "0", "7", *args)
                raise AssertionError("accepted")
            except redis.ResponseError as exc:
                assert str(exc) == text
        try:  # a step of another move changes nothing
            c.execute_command("MAKO", "SLOTS", "IMPORT", "0", "10", "0", "8")
            raise AssertionError("accepted")
        except redis.ResponseError as exc:
            assert str(exc) == ("slots 0-10 of shard 1 are importing (shard 0, move 7), "
                                "not importing from shard 0 for move 8")
        assert c.execute_command("MAKO", "SLOTS", "DROP", "0", "10", "7") == 0  # undone
    proc = makoctl("cluster", "reshard", "--slots", "5-1", "--to", "1", "--data-dir", cluster.data_dir, check=False)
    assert proc.returncode == 2 and "the first not above the last" in proc.stderr
    proc = makoctl("cluster", "reshard", "--slots", "0-1", "--to", "9", "--data-dir", cluster.data_dir, check=False)
    assert proc.returncode == 2 and "no shard 9" in proc.stderr
