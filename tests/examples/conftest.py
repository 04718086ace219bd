"""Fixtures for SDK tests against a live control plane (see tests/flags_live.py)."""

from tests.flags_live import (  # noqa: F401  (fixtures)
    committed,
    flags_database_url,
    live_app,
    live_router,
)
