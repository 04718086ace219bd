"""Schemathesis over every operation of /api/schema/, in process (WSGI), with an operator key
and with a router key: no 5xx, and answers that the schema documents match it.

Bounded (MAX_EXAMPLES per operation and key, derandomized) so the run stays well under two
minutes on two cores; path parameters mostly name the real router so requests reach the code.
"""

from __future__ import annotations

import time
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from routing.evaluation import FLAG_NAMES

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

MAX_EXAMPLES = 12  # per operation, key and generation mode
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
# Negative cases (values outside the schema: wrong types, out of range) only need "no 5xx":
# a 400 for them is right whatever the documented answer says.
NEGATIVE_CHECKS = [not_a_server_error]


def real_path_parameters(case: Any, draw: Any) -> None:
    """Most cases name things that exist, so the request gets past the 404."""
    params = case.path_parameters or {}
    if "slug" in params and draw(st.integers(0, 4)):
        params["slug"] = "checkout"
    if "name" in params and draw(st.integers(0, 2)):
        params["name"] = draw(st.sampled_from(FLAG_NAMES))
    if "number" in params and draw(st.integers(0, 2)):
        params["number"] = draw(st.integers(1, 3))


def fuzz_operation(operation: Any, headers: dict[str, str], mode: GenerationMode) -> list[str]:
    failures: list[str] = []

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @hypothesis.given(data=st.data())
    def run(data: Any) -> None:
        case = data.draw(operation.as_strategy(generation_mode=mode))
        real_path_parameters(case, data.draw)
        response = case.call(headers=headers)
        checks = CHECKS if mode is GenerationMode.POSITIVE else NEGATIVE_CHECKS
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except (Exception, BaseExceptionGroup) as exc:  # every failure, not only the first
            failures.append(f"{operation.label}: {exc}"[:3000])

    run()
    return failures


@pytest.fixture
def schema():
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from config.wsgi import application
    from controlplane.clients import recorder

    # As Django's test client does: a request must not close the test's connection (and with
    # it the transaction that holds the fixtures). Flag polls must not start the clients'
    # flush thread, whose own connection would outlive the test database.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    recorder.autostart = False
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/", application)
    finally:
        recorder.drain()
        recorder.autostart = True
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.mark.parametrize("role", ["operator", "router"])
def test_every_operation__no_server_error_and_schema_conformance(request, router, schema, role):
    raw_key = request.getfixturevalue(f"{role}_key")
    headers = {"Authorization": f"Bearer {raw_key}"}
    started = time.monotonic()
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        for mode in GenerationMode:
            failures += fuzz_operation(operation, headers, mode)
    print(
        f"schemathesis {role} key: {len(operations)} operations x {len(GenerationMode)} modes, "
        f"<= {MAX_EXAMPLES} examples each, {time.monotonic() - started:.1f} s, "
        f"{len(failures)} failures"
    )
    assert failures == [], "\n\n".join(failures)
