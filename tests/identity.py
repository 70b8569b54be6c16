"""Factories of the authentication tests: tenants, members, keys, access rules, tokens."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from controlplane.contracts import Principal
from controlplane.models import Membership, ProcessAccess, Tenant
from controlplane.services.auth import api_key_create
from controlplane.services.policy import policy_cache_clear

PASSWORD = "correct horse battery staple"
REFERER = "https://app.example.com"


@pytest.fixture
def fast_passwords(settings: Any) -> None:
    """A cheap password hasher: these tests create many users (the default costs ~0.3 s each)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def member(tenant: str, username: str, role: str = "editor", password: str = PASSWORD) -> Membership:
    """A user (created if missing) who is a ``role`` of ``tenant`` (created if missing)."""
    team, _ = Tenant.objects.get_or_create(slug=tenant, defaults={"name": tenant.title()})
    User = get_user_model()
    user = User.objects.filter(username=username).first() or User.objects.create_user(username, password=password)
    return Membership.objects.create(user=user, tenant=team, role=role)


def principal_of(membership: Membership) -> Principal:
    return Principal(
        tenant=membership.tenant.slug, user_id=membership.user_id, username=membership.user.username,
        roles=(membership.role,),
    )


def key_of(membership: Membership, name: str = "test key", **kw: Any) -> str:
    _, raw = api_key_create(tenant_id=membership.tenant_id, user_id=membership.user_id, name=name, **kw)
    return raw


def rule(tenant: str, process_id: str, audience: str, allowed: bool) -> ProcessAccess:
    """Set one access rule (and drop the cached rules, as the admin does)."""
    team = Tenant.objects.get(slug=tenant)
    row, _ = ProcessAccess.objects.update_or_create(
        tenant=team, process_id=process_id, audience=audience, defaults={"allowed": allowed}
    )
    policy_cache_clear()
    return row


def gp_token(http: Client, username: str, password: str = PASSWORD, **params: str) -> dict[str, Any]:
    """POST /arcgis/tokens/generateToken as Esri clients do; the JSON answer."""
    data = {"username": username, "password": password, "f": "json", **params}
    if "client" not in params and "referer" not in params:
        data.update(client="referer", referer=REFERER)
    response = http.post("/arcgis/tokens/generateToken", data)
    assert response.status_code == 200, response.status_code
    return response.json()
