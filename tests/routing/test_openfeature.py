"""RouteplaneProvider through the real openfeature-sdk client."""

from __future__ import annotations

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import Reason

from routing.client import stop_all_pollers
from routing.evaluation import bucket
from routing.openfeature import RouteplaneProvider
from tests.routing.fakeplane import FakePlane, make_document


@pytest.fixture
def plane():
    fake = FakePlane()
    yield fake
    fake.stop()
    stop_all_pollers()


@pytest.fixture
def client_for():
    def make(provider: RouteplaneProvider):
        api.set_provider(provider)
        return api.get_client()

    yield make
    api.clear_providers()


def test_remote__flags_resolved_with_the_shared_rule(plane, client_for, tmp_path):
    document = make_document(5, routellm_enabled=50)
    document["config"]["enabled"] = True
    plane.set_document(document)
    client = client_for(
        RouteplaneProvider(url=plane.url, api_key="rp_of-key", cache_path=tmp_path / "c.json")
    )

    for key in ("user-1", "user-2"):
        details = client.get_boolean_details(
            "routellm_enabled", False, EvaluationContext(targeting_key=key)
        )
        assert details.value is (bucket("routellm_enabled", key) < 50)
        assert details.reason == Reason.SPLIT
        assert details.flag_metadata["revision"] == 5
    assert client.get_boolean_value("routellm_enabled", True) is False  # no key: 50 % is off
    user1 = EvaluationContext(targeting_key="user-1")
    assert client.get_boolean_value("routing:technical", False, user1) is True


def test_remote__kill_switch__disabled_reason(plane, client_for, tmp_path):
    document = make_document(6, routellm_enabled=100)
    document["kill_switch"] = True
    plane.set_document(document)
    client = client_for(
        RouteplaneProvider(url=plane.url, api_key="rp_of-key2", cache_path=tmp_path / "c.json")
    )

    details = client.get_boolean_details("routellm_enabled", True)

    assert details.value is False
    assert details.reason == Reason.DISABLED


def test_unknown_flag__default_with_flag_not_found(client_for, monkeypatch):
    monkeypatch.delenv("ROUTEPLANE_URL", raising=False)
    client = client_for(RouteplaneProvider())

    details = client.get_boolean_details("no_such_flag", True)

    assert details.value is True
    assert details.error_code == "FLAG_NOT_FOUND"


def test_local__flags_follow_the_local_feature_flags(client_for, monkeypatch):
    monkeypatch.delenv("ROUTEPLANE_URL", raising=False)
    provider = RouteplaneProvider()
    client = client_for(provider)

    assert client.get_boolean_value("routellm_cost_tracking", True) is False
    provider.flags.enable("routellm_cost_tracking")
    assert client.get_boolean_value("routellm_cost_tracking", False) is True
    assert client.get_string_value("routellm_cost_tracking", "x") == "x"  # booleans only
