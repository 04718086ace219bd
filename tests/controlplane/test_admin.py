"""Django admin: read-only views of immutable data; API keys revoked through the service."""

from __future__ import annotations

import pytest
from django.urls import reverse

from controlplane.models import ApiKey, AuditEntry, ConfigRevision, RouterClient
from controlplane.services import create_api_key, hash_key

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", password="root-pass-123")
    client.force_login(user)
    return client


MODELS = ["router", "configrevision", "auditentry", "apikey", "routerclient"]


@pytest.mark.parametrize("model", MODELS)
def test_admin_changelist__superuser__lists_rows(admin_client, router, model):
    RouterClient.objects.create(router=router, client_id="c-1", sdk_version="0.1.0")
    response = admin_client.get(reverse(f"admin:controlplane_{model}_changelist"))
    assert response.status_code == 200


@pytest.mark.parametrize("model", MODELS)
def test_admin_add__any_model__refused(admin_client, model):
    response = admin_client.get(reverse(f"admin:controlplane_{model}_add"))
    assert response.status_code == 403


def test_admin_revision__detail__read_only_with_flag_states(admin_client, router):
    revision = router.current_revision
    url = reverse("admin:controlplane_configrevision_change", args=[revision.pk])

    page = admin_client.get(url)
    posted = admin_client.post(url, {"action": "tampered", "reason": "x"})

    assert page.status_code == 200
    body = page.content.decode()
    assert "routellm_enabled" in body  # the flag-state inline
    assert 'name="reason"' not in body  # no editable field
    assert posted.status_code == 403
    assert ConfigRevision.objects.get(pk=revision.pk).action == "router.create"


def test_admin_audit__delete__refused_and_row_kept(admin_client, router):
    entry = AuditEntry.objects.filter(router=router).first()
    response = admin_client.post(
        reverse("admin:controlplane_auditentry_delete", args=[entry.pk]), {"post": "yes"}
    )
    assert response.status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_admin_api_key__pages__never_show_key_or_hash(admin_client, router, actor):
    key, raw = create_api_key(router=router, role="operator", actor=actor, name="ops")
    listing = admin_client.get(reverse("admin:controlplane_apikey_changelist")).content.decode()
    detail = admin_client.get(
        reverse("admin:controlplane_apikey_change", args=[key.pk])
    ).content.decode()
    for body in (listing, detail):
        assert key.prefix in body
        assert raw not in body
        assert hash_key(raw) not in body


def test_admin_api_key__revoke_action__revokes_through_service(admin_client, router, actor):
    key, _ = create_api_key(router=router, role="router", actor=actor)
    other, _ = create_api_key(router=router, role="viewer", actor=actor)

    response = admin_client.post(
        reverse("admin:controlplane_apikey_changelist"),
        {"action": "revoke", "_selected_action": [key.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
    assert ApiKey.objects.get(pk=other.pk).revoked_at is None
    entry = AuditEntry.objects.get(action="api_key.revoke")
    assert entry.actor == "user:root"
    assert entry.diff["prefix"] == key.prefix


def test_admin_api_key__staff_without_permission__no_revoke_action(
    client, django_user_model, router, actor
):
    key, _ = create_api_key(router=router, role="router", actor=actor)
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("staff", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_apikey"))
    client.force_login(user)

    response = client.post(
        reverse("admin:controlplane_apikey_changelist"),
        {"action": "revoke", "_selected_action": [key.pk]},
    )

    assert response.status_code in (200, 302)
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None
