"""Demo events: quality scores through outcomes, deterministic, stored once."""

from __future__ import annotations

import pytest

from tracking.demo import seed_events
from tracking.models import Event
from tracking.reports import savings_report

pytestmark = pytest.mark.django_db(transaction=True)


def test_seed_events__some_calls_rated__report_shows_quality_run_twice_same(router):
    assert seed_events(router=router, days=2) > 200
    report = savings_report(router=router, period_days=3)
    rated = Event.objects.filter(router=router, quality__isnull=False).count()

    assert 0 < rated < report["total_requests"]
    assert report["quality_samples"] == rated
    assert 0.72 <= report["average_quality"] <= 1.0

    assert seed_events(router=router, days=2) == 0
    assert savings_report(router=router, period_days=3)["quality_samples"] == rated
