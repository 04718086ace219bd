"""Login, logout and the failed-login limit (10 per IP per minute, on Redis, failing open)."""

from __future__ import annotations

import pytest


def _login(client, password, ip="10.1.1.1"):
    return client.post("/login/", {"username": "olivia", "password": password}, REMOTE_ADDR=ip)


def test_login__right_password__redirects_to_overview(client, operator_user):
    response = _login(client, "operator-pass-123")
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_login__next__returns_to_bookmarked_page(client, operator_user, router):
    response = client.post(
        "/login/?next=/routers/checkout/",
        {"username": "olivia", "password": "operator-pass-123", "next": "/routers/checkout/"},
    )
    assert response["Location"] == "/routers/checkout/"


def test_login__wrong_password__400_with_message(client, operator_user):
    response = _login(client, "wrong")
    assert response.status_code == 400
    assert "Please enter a correct username and password" in response.content.decode()
    assert client.get("/").status_code == 302


def test_login__page_renders(client, db):
    response = client.get("/login/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'for="id_username"' in body and 'for="id_password"' in body


def test_login__10_failures_per_ip__11th_attempt_refused_even_with_right_password(
    client, operator_user
):
    for _ in range(10):
        assert _login(client, "wrong").status_code == 400
    response = _login(client, "operator-pass-123")
    assert response.status_code == 429
    assert response["Retry-After"] == "60"
    assert "Too many failed logins" in response.content.decode()
    assert client.get("/").status_code == 302  # not logged in
    # Another address is not affected.
    assert _login(client, "operator-pass-123", ip="10.2.2.2").status_code == 302


def test_login__limit_window__expires(client, operator_user):
    from django.core.cache import cache

    for _ in range(10):
        _login(client, "wrong")
    assert _login(client, "operator-pass-123").status_code == 429
    cache.delete("routeplane:login-failures:10.1.1.1")  # what the 60 s expiry does
    assert _login(client, "operator-pass-123").status_code == 302


def test_login__redis_down__fails_open(client, operator_user, settings):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    for _ in range(12):
        assert _login(client, "wrong").status_code == 400
    assert _login(client, "operator-pass-123").status_code == 302


def test_logout__post__logs_out(operator_client):
    response = operator_client.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert operator_client.get("/").status_code == 302


@pytest.mark.parametrize("method", ["get"])
def test_logout__get__refused(operator_client, method):
    assert getattr(operator_client, method)("/logout/").status_code == 405
    assert operator_client.get("/").status_code == 200
