import pytest

from tests.unit.harness import Harness


@pytest.fixture
def h() -> Harness:
    """A fresh in-process keyspace and session to run commands against."""
    return Harness()
