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


def _burst(path: str, count: int, ip: str = "10.3.3.3") -> list[int]:
    """`count` wrong-password POSTs at once, each from its own thread and test client."""
    import threading

    from django.db import connection
    from django.test import Client

    start = threading.Barrier(count)
    codes: list[int] = []

    def attempt() -> None:
        try:
            client = Client()
            start.wait()
            form = {"username": "olivia", "password": "wrong"}
            response = client.post(path, form, REMOTE_ADDR=ip)
            codes.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return codes


@pytest.mark.django_db(transaction=True)
def test_login__parallel_burst__at_most_10_passwords_checked(operator_user):
    # The slot is taken (INCR) before the password hash, so no thread sees a stale count.
    codes = _burst("/login/", 20)
    assert len(codes) == 20
    checked = [code for code in codes if code == 400]
    assert len(checked) <= 10
    assert codes.count(429) == 20 - len(checked) >= 10


def _admin_login(client, password, ip="10.4.4.4"):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": "olivia", "password": password, "next": "/admin/"},
        REMOTE_ADDR=ip,
    )


def test_admin_login__10_failures__11th_refused_with_429(client, operator_user):
    operator_user.is_staff = True
    operator_user.save(update_fields=["is_staff"])
    for _ in range(10):
        assert _admin_login(client, "wrong").status_code == 200  # the admin's form error
    response = _admin_login(client, "operator-pass-123")
    assert response.status_code == 429
    assert response["Retry-After"] == "60"
    assert client.get("/admin/").status_code == 302  # not logged in
    assert _admin_login(client, "operator-pass-123", ip="10.5.5.5").status_code == 302


def test_login__admin_and_dashboard__share_one_limit(client, operator_user):
    for _ in range(5):
        _admin_login(client, "wrong", ip="10.1.1.1")
        _login(client, "wrong")
    assert _login(client, "operator-pass-123").status_code == 429
    assert _admin_login(client, "operator-pass-123", ip="10.1.1.1").status_code == 429


def test_login__right_passwords__not_counted_as_failures(client, operator_user):
    for _ in range(15):
        assert _login(client, "operator-pass-123").status_code == 302
        client.post("/logout/")
    assert _login(client, "wrong").status_code == 400


def test_admin_login__redis_down__fails_open(client, operator_user, settings):
    import socket

    operator_user.is_staff = True
    operator_user.save(update_fields=["is_staff"])
    with socket.socket() as sock:
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
        assert _admin_login(client, "wrong").status_code == 200
    assert _admin_login(client, "operator-pass-123").status_code == 302


def test_password_validators__common_password_refused(db):
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="too common"):
        validate_password("password123")
    validate_password("routeplane-demo")  # the seeded demo password still passes


def test_logout__post__logs_out(operator_client):
    response = operator_client.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert operator_client.get("/").status_code == 302


@pytest.mark.parametrize("method", ["get"])
def test_logout__get__refused(operator_client, method):
    assert getattr(operator_client, method)("/logout/").status_code == 405
    assert operator_client.get("/").status_code == 200
