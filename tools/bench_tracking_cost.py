"""What client-side caching costs the writes: SET throughput and the
writer's node's CPU per SET on a 2x1 cluster, with and without a client
tracking keys on the other node (alternating rounds, one run).

    makoctl cluster start --shards 2 --replicas 1 --base-port 9800 --data-dir /tmp/tb
    python tools/bench_tracking_cost.py 9800 3 /tmp/tb

"On" rounds have a BCAST client with a prefix no key has on s1r0: every
write's keys are collected, released with its reply and sent to s1r0, which
matches them against the prefix; nothing is delivered. (BENCHMARKS.md)"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import redis


def server_pid(port: int) -> int:
    return json.loads(redis.Redis(port=port).execute_command("MAKO", "STATUS"))["pid"]


def cpu_s(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().split(")")[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(port: int, n: int = 100_000) -> tuple[float, float]:
    """(SET/s, server CPU us per SET) of one redis-benchmark run against ``port``."""
    pid = server_pid(port)
    cpu0, t0 = cpu_s(pid), time.time()
    subprocess.run(["redis-benchmark", "-p", str(port), "-t", "set", "-c", "50", "-n", str(n), "-r", "100000", "-q"],
                   capture_output=True, check=True)
    elapsed_s, cpu1 = time.time() - t0, cpu_s(pid)
    return n / elapsed_s, (cpu1 - cpu0) / n * 1e6


def main() -> None:
    base, rounds, data_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    writer_port, tracker_port = base, base + 1
    for r in range(rounds):
        for mode in ("off", "on"):
            tracker = None
            if mode == "on":
                tracker = socket.create_connection(("127.0.0.1", tracker_port))
                tracker.sendall(b"HELLO 3\r\nCLIENT TRACKING ON BCAST PREFIX zz\r\n")
                time.sleep(1.0)
                tracker.recv(65536)
            per_s, cpu_us = measure(writer_port)
            print(f"round {r} tracking {mode}: {per_s:,.0f} SET/s, {cpu_us:.1f} us CPU/op on the writer's node",
                  flush=True)
            if tracker is not None:
                tracker.close()
                # The tracker's node keeps its interest for 60 s after its last
                # tracking client: restart it, and let the writer's node forget (2.5 s).
                subprocess.run(["makoctl", "cluster", "restart", "s1r0", "--data-dir", data_dir], capture_output=True)
                time.sleep(3.5)


if __name__ == "__main__":
    main()
