"""GET /metrics: Prometheus text format, for an operator API key or ROUTEPLANE_METRICS_TOKEN.

In-process instruments (flags polls, long-poll waiters, propagation, ingested events) are summed
over every worker process through prometheus_client's multiprocess files when
PROMETHEUS_MULTIPROC_DIR is set (python -m config.run sets it), else read from this process.
The database-derived families (savings, strong share, lags, guardrail trips, webhook
deliveries) are the same on every worker.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from config.multiproc import ENV_NAME
from controlplane.api.auth import bearer_token
from controlplane.models import Role
from controlplane.selectors import api_key_for_raw
from controlplane.webhooks.metrics import delivery_collector
from tracking.metrics import database_collector

UNAUTHORIZED = "Send an operator API key, or ROUTEPLANE_METRICS_TOKEN when set, as Bearer."


def authorized(request: HttpRequest) -> bool:
    token = bearer_token(request.headers.get("Authorization", ""))
    if token is None:
        return False
    expected = getattr(settings, "ROUTEPLANE_METRICS_TOKEN", "")
    if expected and hmac.compare_digest(token.encode(), expected.encode()):
        return True
    key = api_key_for_raw(raw_key=token)
    return key is not None and key.role == Role.OPERATOR


def not_modified_share(families: Iterable[Metric]) -> Metric:
    """304s over all flags answers since the workers started (a PromQL rate ratio is better for
    a window; this is the at-a-glance figure)."""
    total = not_modified = 0.0
    for family in families:
        if family.name == "routeplane_flags_requests":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    total += sample.value
                    if sample.labels.get("status") == "304":
                        not_modified += sample.value
    share = GaugeMetricFamily(
        "routeplane_flags_not_modified_share",
        "Share of flags polls answered 304 Not Modified since the workers started.",
    )
    share.add_metric([], not_modified / total if total else 0.0)
    return share


class _Scrape:
    """What one scrape collects: generate_latest only calls collect()."""

    def collect(self) -> Iterator[Metric]:
        if os.environ.get(ENV_NAME):
            local = CollectorRegistry()
            MultiProcessCollector(local)
            families = list(local.collect())
        else:
            families = list(REGISTRY.collect())
        yield from families
        yield not_modified_share(families)
        yield from database_collector.collect()
        yield from delivery_collector.collect()


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not authorized(request):
        response = HttpResponse(UNAUTHORIZED, status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="routeplane-metrics"'
        return response
    return HttpResponse(generate_latest(_Scrape()), content_type=CONTENT_TYPE_LATEST)
