from __future__ import annotations

import pytest

from routing.client import stop_all_pollers
from tests.faults.stack import Stack


@pytest.fixture(scope="session")
def stack():
    """One private deployment for every fault test (migrating it is the slow part); each test
    has its own router and leaves PostgreSQL and Redis running."""
    stack = Stack()
    try:
        yield stack
    finally:
        stack.close()


@pytest.fixture(autouse=True)
def _stop_flag_pollers():
    """A test's FeatureFlags poller must not go on polling (and logging) during the next test."""
    yield
    stop_all_pollers()
