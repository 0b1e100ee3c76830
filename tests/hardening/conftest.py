from tests.integration.conftest import fresh_single, make_cluster, single  # noqa: F401  (shared fixtures)
