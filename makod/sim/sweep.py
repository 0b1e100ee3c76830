"""Run many seeds, on every core, under every profile, and report the failures.

A *case* is (seed, profile). In a sweep the cluster shape comes from the
seed too (runner.shape_for), so a range of seeds covers one-shard Paxos,
Mako across 2-3 shards and the 2PC baseline, with 3 or 5 voters, learners,
and preferred leaders on and off. Every failure is reported with the exact
command that replays it. Cases run in worker processes (``jobs``); each is
deterministic, so the result does not depend on how they were spread.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from makod.sim.faults import PROFILES
from makod.sim.planted import planted
from makod.sim.runner import DEFAULTS, replay_command, run_seed, shape_for


@dataclass
class CaseResult:
    seed: int
    profile: str
    params: dict
    ok: bool
    error: str = ""
    ops: int = 0
    seconds: float = 0.0

    @property
    def replay(self) -> str:
        return replay_command(self.seed, self.params)


def case_params(seed: int, profile: str, shape: dict | None, plant: str | None, geo: bool = False,
                max_txn_bytes: int | None = None, membership: bool = False, reshard: bool = False) -> dict:
    params = dict(shape if shape is not None else shape_for(seed))
    params["profile"] = profile
    if geo:
        params["geo"] = True
    if max_txn_bytes is not None:
        params["max_txn_bytes"] = max_txn_bytes
    if membership:
        params["membership"] = True
    if reshard:
        params["reshard"] = True
    if plant:
        params["plant"] = plant
    return params


def run_case(args: tuple[int, dict]) -> CaseResult:
    seed, params = args
    kwargs = {k: v for k, v in params.items() if k != "plant"}
    started = time.monotonic()
    try:
        with planted(params.get("plant")):
            result = run_seed(seed, **kwargs)
    except AssertionError as exc:
        return CaseResult(seed, params["profile"], params, False, str(exc)[:2000], 0, time.monotonic() - started)
    except Exception as exc:  # a crash inside the simulated code is a failure too
        return CaseResult(seed, params["profile"], params, False, f"{type(exc).__name__}: {exc}"[:2000], 0,
                          time.monotonic() - started)
    return CaseResult(seed, params["profile"], params, True, "", result.ops, time.monotonic() - started)


def cases(first: int, count: int, profiles: Iterable[str], shape: dict | None = None,
          plant: str | None = None, geo: bool = False, max_txn_bytes: int | None = None,
          membership: bool = False, reshard: bool = False) -> Iterator[tuple[int, dict]]:
    for seed in range(first, first + count):
        for profile in profiles:
            yield seed, case_params(seed, profile, shape, plant, geo, max_txn_bytes, membership, reshard)


def sweep(
    first: int,
    count: int,
    profiles: Iterable[str] = PROFILES,
    jobs: int = 1,
    shape: dict | None = None,
    plant: str | None = None,
    stop_at_first_failure: bool = False,
    on_result: Callable[[CaseResult], None] | None = None,
    geo: bool = False,
    max_txn_bytes: int | None = None,
    membership: bool = False,
    reshard: bool = False,
) -> list[CaseResult]:
    """Run every case (``geo``: each across a drawn WAN; ``max_txn_bytes``:
    the replicas' bound, small to split slots and refuse transactions;
    ``membership``: replicas added, promoted and removed under the faults;
    ``reshard``: slots moved between shards under the faults);
    returns the results in case order."""
    todo = list(cases(first, count, list(profiles), shape, plant, geo, max_txn_bytes, membership, reshard))
    results: list[CaseResult] = []
    if jobs <= 1:
        for case in todo:
            result = run_case(case)
            results.append(result)
            if on_result:
                on_result(result)
            if stop_at_first_failure and not result.ok:
                break
        return results
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(jobs) as pool:
        for result in pool.imap(run_case, todo, chunksize=1):
            results.append(result)
            if on_result:
                on_result(result)
            if stop_at_first_failure and not result.ok:
                pool.terminate()
                break
    return results


__all__ = ["CaseResult", "DEFAULTS", "PROFILES", "case_params", "cases", "run_case", "sweep"]
