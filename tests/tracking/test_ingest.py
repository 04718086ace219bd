"""Recording events (tracking.ingest) without the HTTP layer."""

from __future__ import annotations

import pytest

from tests.tracking.conftest import make_event
from tests.tracking.recount import ingest


@pytest.mark.django_db
def test_record_events__decoded_payload_without_raw_body__nul_rejected(router):
    # Callers without the raw bytes (seed_demo, benches) always get the per-event scan.
    events = [make_event(), make_event(ab_group="b\u0000"), make_event()]

    result = ingest(router, events)

    assert (result.accepted, [item["index"] for item in result.rejected]) == (2, [1])
    assert result.rejected[0]["errors"].keys() == {"ab_group"}
