import pytest

from tests.integration.conftest import fresh_single, make_cluster, single  # noqa: F401  (shared fixtures)


@pytest.fixture(scope="module")
def trio(tmp_path_factory):
    """A 1x3 shard shared by a module's tests."""
    from tests.integration.cluster_util import Cluster

    c = Cluster(tmp_path_factory.mktemp("peer") / "data", replicas=3)
    try:
        c.start()
        yield c
    finally:
        c.stop()


