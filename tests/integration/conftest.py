from __future__ import annotations

import pytest

from tests.integration.cluster_util import Cluster


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """One makod (1 shard x 1 replica), shared by a module's tests."""
    c = Cluster(tmp_path_factory.mktemp("single") / "data")
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="session")
def two_by_three(tmp_path_factory):
    """2 shards x 3 replicas, shared by every module that asks (data types,
    scripts): tests that kill a node restart it before they end."""
    c = Cluster(tmp_path_factory.mktemp("two_by_three") / "data", shards=2, replicas=3)
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture
def fresh_single(tmp_path):
    c = Cluster(tmp_path / "data")
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture
def make_cluster(tmp_path):
    made: list[Cluster] = []

    def make(**kwargs) -> Cluster:
        c = Cluster(tmp_path / f"data{len(made)}", **kwargs)
        made.append(c)
        c.start()
        return c

    yield make
    for c in made:
        c.stop()

