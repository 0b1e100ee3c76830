"""A full disk: the node stays up, refuses writes with Redis's MISCONF, serves reads,
and recovers by itself when space returns; nothing acknowledged is lost.

The data dir lives on a small tmpfs the test mounts (root is needed; CI runs as root)."""

from __future__ import annotations

import os
import subprocess
import threading

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.integration.cluster_util import Cluster, makoctl, wait_for


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mnt)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(path: str) -> None:
    # Unbuffered: the write that finds the disk full fails there, not at close.
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * (1 << 16))
        except OSError:
            pass


def test_disk_full_refuses_writes_serves_reads_and_recovers(small_disk):
    cluster = Cluster(small_disk / "data", config={"checkpoint_interval_ms": 200})
    cluster.start()
    try:
        c = cluster.client(retry=Retry(NoBackoff(), 0), socket_timeout=60)
        acked = {}
        for i in range(50):
            key, value = f"before:{i}".encode(), os.urandom(1000)
            assert c.set(key, value)
            acked[key] = value
        ballast = str(small_disk / "ballast")
        _fill(ballast)
        # The first write that needs new pages cannot be made durable: it waits
        # (it is not acknowledged) while the node retries.
        stalled: dict = {}

        def write_big() -> None:
            try:
                stalled["reply"] = cluster.client(retry=Retry(NoBackoff(), 0), socket_timeout=60).set(
                    b"stalled", b"s" * (2 << 20))
            except Exception as exc:  # noqa: BLE001 - reported below
                stalled["error"] = exc

        writer = threading.Thread(target=write_big)
        writer.start()
        other = cluster.client(retry=Retry(NoBackoff(), 0), socket_timeout=10)

        def misconf() -> bool:
            try:
                other.set(b"probe", b"x")
            except redis.ResponseError as exc:
                assert str(exc) == "MISCONF Errors writing to the AOF file: No space left on device", str(exc)
                return True
            return False

        wait_for(misconf, timeout=20, what="writes refused with MISCONF")
        # Reads go on, and so does a MULTI with a write (EXECABORT).
        assert other.get(b"before:3") == acked[b"before:3"]
        assert other.execute_command("MULTI") == b"OK"
        with pytest.raises(redis.ResponseError, match="^MISCONF"):
            other.execute_command("SET", "in-multi", "1")
        with pytest.raises(redis.exceptions.ExecAbortError):
            other.execute_command("EXEC")
        assert other.ping() is True
        # Space returns: the node recovers by itself.
        os.remove(ballast)
        writer.join(timeout=30)
        # It either waited and succeeded, or (when the node had already seen
        # the disk fail before it arrived) was refused with MISCONF: never lost.
        if "error" in stalled:
            assert str(stalled["error"]).startswith("MISCONF"), stalled
        else:
            assert stalled.get("reply") is True, stalled
            acked[b"stalled"] = b"s" * (2 << 20)
        wait_for(lambda: other.set(b"after", b"ok"), timeout=20, what="writes accepted again")
        acked[b"after"] = b"ok"
        name = cluster.names[0]
        cluster.kill(name)
        cluster.restart(name)
        c = cluster.client()
        for key, value in acked.items():
            assert c.get(key) == value, key
        assert "Traceback" not in cluster.log(name)
    finally:
        makoctl("cluster", "stop", "--data-dir", str(small_disk / "data"), check=False)
        cluster.stop()
