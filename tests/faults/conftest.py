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
        stop_all_pollers()
        stack.close()
