"""What client-side caching costs the writes: SET throughput and the
writer's node's CPU per SET on a 2x1 cluster, with and without a client
tracking keys on the other node (alternating rounds, one run).

    makoctl cluster start --shards 2 --replicas 1 --base-port 9800 --data-dir /tmp/tb
    python tools/bench_tracking_cost.py 9800 3 /tmp/tb

"On" rounds have a BCAST client with a prefix no key has on s1r0: every
write's keys are collected, released with its reply and sent to s1r0, which
matches them against the prefix; nothing is delivered. (BENCHMARKS.md)"""
import json, os, socket, subprocess, sys, time
import redis
base = int(sys.argv[1]); rounds = int(sys.argv[2])
a, b = base, base + 1
def pid(port):
    return json.loads(redis.Redis(port=port).execute_command("MAKO", "STATUS"))["pid"]
def cpu(p):
    f = open(f"/proc/{p}/stat").read().split(")")[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
def run(port, n=100000):
    p = pid(port); c0 = cpu(p); t0 = time.time()
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-t", "set", "-c", "50", "-n", str(n), "-r", "100000", "-q"],
                         capture_output=True, text=True).stdout
    dt = time.time() - t0; c1 = cpu(p)
    return n / dt, (c1 - c0) / n * 1e6
for r in range(rounds):
    for mode in ("off", "on"):
        s = None
        if mode == "on":
            s = socket.create_connection(("127.0.0.1", b))
            s.sendall(b"HELLO 3\r\nCLIENT TRACKING ON BCAST PREFIX zz\r\n"); time.sleep(1.0); s.recv(65536)
        rps, us = run(a)
        print(f"round {r} tracking {mode}: {rps:,.0f} SET/s, {us:.1f} us CPU/op on the writer's node", flush=True)
        if s is not None:
            s.close()
            # The tracker's node keeps its interest for 60 s after its last
            # tracking client: restart it, and let the writer's node forget (2.5 s).
            subprocess.run(["makoctl", "cluster", "restart", "s1r0", "--data-dir", sys.argv[3]], capture_output=True)
            time.sleep(3.5)
