"""``makoctl bench profile``: py-spy samples a real leader under redis-benchmark."""

from __future__ import annotations

import json

from makoctl.bench.profile_bench import summarize
from tests.integration.cluster_util import makoctl

COLLAPSED = """\
<module> (makod/main.py:112);run (asyncio/runners.py:190);Runner.run (asyncio/runners.py:118) 60
<module> (makod/main.py:112);Session.feed (resp/session.py:113);Session._dispatch (resp/session.py:217) 25
<module> (makod/main.py:112);Session.feed (resp/session.py:113);Session._dispatch (resp/session.py:246) 5
<module> (makod/main.py:112);Session.feed (resp/session.py:113);encode (resp/replies.py:40) 10
_bootstrap (threading.py:995);StorageWriter._run (makod/storage/writer.py:70) 400
"""


def test_summary_counts_the_loop_thread_by_function_not_by_line() -> None:
    out = summarize(COLLAPSED, top=10)
    assert out["samples"] == 100  # the writer thread's 400 samples are not the loop's
    assert out["event_loop_c_share"] == 0.6
    shares = {row["function"]: row["share"] for row in out["self"]}
    assert shares["Session._dispatch (resp/session.py)"] == 0.3  # two lines, one function
    assert shares["encode (resp/replies.py)"] == 0.1
    inclusive = {row["function"]: row["share"] for row in out["inclusive"]}
    assert inclusive["Session.feed (resp/session.py)"] == 0.4
    assert not any("asyncio" in name for name in inclusive)  # only makodb's own frames


def test_profile_a_leader_under_set(tmp_path) -> None:
    output = tmp_path / "stacks.txt"
    proc = makoctl("bench", "profile", "-t", "set", "-c", "8", "--duration", "2", "--rate", "100",
                   "-o", str(output), "--json", check=False, timeout=90)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    # Samples of the busy event loop: fewer when the machine's cores are
    # shared (the suite runs two workers), never none.
    assert out["samples"] > 10 and output.exists()
    names = " ".join(row["function"] for row in out["inclusive"])
    assert "resp/session.py" in names or "makod/" in names, out["inclusive"]


def test_profile_bad_options() -> None:
    proc = makoctl("bench", "profile", "--duration", "0", check=False)
    assert proc.returncode == 2 and "--duration" in proc.stderr, proc.stderr


def test_mako_status_reports_the_collectors_pauses(two_by_three) -> None:
    leader = two_by_three.leader(0)
    status = json.loads(two_by_three.client(leader).execute_command("MAKO", "STATUS"))
    gc_status = status["gc"]
    assert set(gc_status) == {"gen0", "gen1", "gen2", "freezes"}
    # makod collects and freezes once after loading its state at start.
    assert gc_status["gen2"]["collections"] >= 1 and gc_status["freezes"] >= 1
    assert all(gc_status[g]["collected"] >= 0 for g in ("gen0", "gen1", "gen2"))
    assert gc_status["gen0"]["max_ms"] <= gc_status["gen0"]["total_ms"]
