"""``makoctl bench profile``: where a shard leader's time goes under load.

Starts a cluster (or uses a running one), drives its leader with
redis-benchmark, and samples the leader with py-spy for a while. The samples
are kept as collapsed stacks (one ``frame;frame;... count`` line per stack:
speedscope and flamegraph.pl read it as is) and summed into two tables: the
functions the process is in (self time) and the ones it is under
(inclusive time), the first place to look before optimizing anything.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections import Counter

import click
from rich.console import Console
from rich.table import Table

from makoctl.bench.tpcc.common import BenchError, open_cluster
from makoctl.procs import node_status

# A sample whose innermost Python frame is the loop's runner is in uvloop's C
# code: polling, reading and writing sockets (py-spy sees no deeper).
LOOP_FRAMES = ("Runner.run (asyncio/runners.py", "run (asyncio/runners.py", "BaseEventLoop.run_forever",
               "BaseEventLoop._run_once")
_LINE = re.compile(r":\d+\)$")
_OURS = re.compile(r"\((makod|resp|makoctl)/")


def summarize(collapsed: str, top: int) -> dict:
    """Self and inclusive shares of each function in py-spy's collapsed output,
    over the samples of the thread that ran the event loop (the others wait on
    the disk or sleep, and would drown it)."""
    stacks: list[tuple[list[str], int]] = []
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        stacks.append((stack.split(";"), int(count)))
    main = [(frames, n) for frames, n in stacks if any("makod/main.py" in f for f in frames[:4])]
    chosen = main or stacks
    total = sum(n for _, n in chosen) or 1
    own: Counter = Counter()
    under: Counter = Counter()
    loop_c = 0
    for frames, n in chosen:
        names = [_LINE.sub(")", f) for f in frames]
        leaf = names[-1]
        if leaf.startswith(LOOP_FRAMES):
            loop_c += n
            leaf = "(the event loop's own C code: uvloop, system calls)"
        own[leaf] += n
        for name in set(names):
            if _OURS.search(name):
                under[name] += n
    return {
        "samples": total,
        "event_loop_c_share": loop_c / total,
        "self": [{"function": f, "share": n / total} for f, n in own.most_common(top)],
        "inclusive": [{"function": f, "share": n / total} for f, n in under.most_common(top)],
    }


@click.command("profile")
@click.option("-t", "--test", "test", default="set", show_default=True,
              help="redis-benchmark test (-t) to drive the leader with.")
@click.option("--command", default=None, metavar="CMD", help="A custom command instead of -t, e.g. 'HSET h f v'.")
@click.option("-c", "--clients", default=50, show_default=True, help="Parallel connections (-c).")
@click.option("-P", "--pipeline", default=1, show_default=True, help="Pipelined requests per connection (-P).")
@click.option("--duration", "duration_s", type=click.FloatRange(0.5, 600), default=10.0, show_default=True,
              help="Seconds to sample for.")
@click.option("--rate", default=200, show_default=True, help="py-spy samples per second.")
@click.option("--replicas", type=click.IntRange(1, 9), default=None, help="Replicas of the cluster started here [1].")
@click.option("--base-port", type=click.IntRange(1024, 65000), default=None, help="First port of the cluster started here.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="Profile a running cluster's leader (its cluster.yaml) instead of starting one.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="A running cluster's data dir.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="makod-profile.txt", show_default=True,
              help="Where to keep the collapsed stacks (open them in speedscope).")
@click.option("--top", default=20, show_default=True, help="Functions per table.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def profile(test: str, command: str | None, clients: int, pipeline: int, duration_s: float, rate: int,
            replicas: int | None, base_port: int | None, config_file: str | None, data_dir: str | None,
            output: str, top: int, as_json: bool) -> None:
    """Sample a shard leader with py-spy while redis-benchmark drives it."""
    console = Console(stderr=as_json)
    for tool, package in (("py-spy", "pip install py-spy"), ("redis-benchmark", "apt-get install redis-tools")):
        if shutil.which(tool) is None:
            raise click.ClickException(f"{tool} is not installed ({package})")
    if config_file is None and data_dir is None and replicas is None:
        replicas = 1
    try:
        cluster = open_cluster(config_file, data_dir, 1 if replicas else None, replicas, None, None, None, base_port,
                               status=lambda s: None if as_json else console.print(s))
    except BenchError as exc:
        raise click.ClickException(str(exc)) from None
    load = None
    try:
        leader = next((r for r in cluster.cfg.replicas if (node_status(r, None) or {}).get("role") == "leader"), None)
        if leader is None:
            raise click.ClickException("no shard leader answers")
        pid = node_status(leader, None)["pid"]
        what = ["-t", test] if command is None else shlex.split(command)
        load = subprocess.Popen(
            ["redis-benchmark", "-p", str(leader.resp_port), "-c", str(clients), "-P", str(pipeline),
             "-r", "100000", "-n", "2000000000", "-q", *what],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)  # connections up before the first sample
        spy = subprocess.run(
            ["py-spy", "record", "--pid", str(pid), "--duration", str(max(1, round(duration_s))),
             "--rate", str(rate), "--format", "raw", "--output", output, "--nonblocking"],
            capture_output=True, text=True, timeout=duration_s + 60,
        )
        if spy.returncode != 0 or not os.path.exists(output):
            raise click.ClickException(f"py-spy failed (it needs ptrace: run as root or allow it): "
                                       f"{(spy.stderr or spy.stdout).strip()[-400:]}")
    finally:
        if load is not None:
            load.kill()
            load.wait()
        cluster.close()
    with open(output) as f:
        summary = summarize(f.read(), top)
    summary.update(leader=leader.name, pid=pid, output=os.path.abspath(output),
                   load=" ".join(what), clients=clients, pipeline=pipeline)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    console.print(f"{summary['samples']} samples of {leader.name} (pid {pid}) under `{summary['load']}`, "
                  f"{summary['event_loop_c_share']:.0%} in the event loop's C code; stacks kept in {summary['output']}")
    for kind, title in (("self", "self time (where the process is)"), ("inclusive", "inclusive time (what it is under)")):
        table = Table(title=title)
        table.add_column("share", justify="right")
        table.add_column("function (file:line)", overflow="fold")
        for row in summary[kind]:
            table.add_row(f"{row['share']:.1%}", row["function"])
        console.print(table)
