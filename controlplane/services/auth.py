"""Authentication: API keys, GPServer tokens and browser sessions -> the principal of a request.

- **API keys** (``hk_<prefix>_<secret>``): the secret is 256 random bits, shown once; only the
  12-hex-digit prefix (to find the row) and the sha256 of the whole key are stored, compared
  in constant time. Revocable, optionally expiring.
- **Tokens** (GPServer ``generateToken``; also bearer tokens on the OGC surface): signed with
  the server key, not stored. Each names a membership and carries its expiry, its binding
  (referer, or a client IP) and a hash of the user's password, so deactivating the user, the
  membership or the tenant, or changing the password, revokes it on the next request.
- **Sessions**: a user logged in to the admin is their membership's principal in the browser
  (job browser, HTML pages); requests that change something then need Django's CSRF token.
- **Anonymous**: no credentials -> the default tenant's anonymous caller, if that tenant lets
  anonymous callers run anything (``controlplane.services.access``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, get_user, get_user_model
from django.core import signing
from django.db import transaction
from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone

from controlplane.contracts import Principal
from controlplane.exceptions import (
    InvalidCredentials,
    InvalidParameterValue,
    InvalidRequest,
    NotAuthenticated,
    PermissionDenied,
)
from controlplane.models import ApiKey, Membership, Tenant
from controlplane.models.identity import Role
from controlplane.services.access import anonymous_allowed
from controlplane.services.audit import audit_record

KEY_RE = re.compile(r"^hk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
TOKEN_SALT = "honua.token.v1"
CLIENTS = ("referer", "requestip", "ip")
_LAST_USED_EVERY = timedelta(minutes=1)  # spare a write per request; minute precision is enough
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")


def _principal(membership: Membership) -> Principal:
    return Principal(
        tenant=membership.tenant.slug,
        user_id=membership.user_id,
        username=membership.user.get_username(),
        roles=(membership.role,),
    )


def _live_membership(*, user_id: int, tenant_id: int) -> Membership | None:
    """The active membership of an active user in an active tenant."""
    return (
        Membership.objects.select_related("user", "tenant")
        .filter(user_id=user_id, tenant_id=tenant_id, is_active=True, user__is_active=True, tenant__is_active=True)
        .first()
    )


# --- API keys ----------------------------------------------------------------------------------


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def api_key_create(
    *, tenant_id: int, user_id: int, name: str, expires_at: datetime | None = None, actor: str = ""
) -> tuple[ApiKey, str]:
    """A new key of a member of the tenant, and the key itself (shown once, never stored)."""
    if not Membership.objects.filter(user_id=user_id, tenant_id=tenant_id).exists():
        raise InvalidRequest("an API key belongs to a member of its tenant; add the membership first")
    name = name.strip()[:100] or "API key"
    with transaction.atomic():
        prefix = secrets.token_hex(6)
        while ApiKey.objects.filter(prefix=prefix).exists():
            prefix = secrets.token_hex(6)
        raw = f"hk_{prefix}_{secrets.token_urlsafe(32)}"
        key = ApiKey.objects.create(
            tenant_id=tenant_id, user_id=user_id, name=name, prefix=prefix, key_sha256=_sha256(raw),
            expires_at=expires_at,
        )
        audit_record(
            action="apikey.create", object_type="apikey", object_id=str(key.pk), actor=actor, tenant_id=tenant_id,
            after={"name": name, "prefix": prefix, "user_id": user_id,
                   "expires_at": expires_at.isoformat() if expires_at else None},
        )
    return key, raw


def api_key_revoke(*, key_id: int, actor: str = "") -> bool:
    """Revoke a key (False when it was revoked already)."""
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().filter(pk=key_id).first()
        if key is None or key.revoked_at is not None:
            return False
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit_record(
            action="apikey.revoke", object_type="apikey", object_id=str(key.pk), actor=actor,
            tenant_id=key.tenant_id, after={"revoked_at": key.revoked_at.isoformat()},
        )
    return True


def api_key_authenticate(raw: str) -> Principal:
    """The principal of an API key; InvalidCredentials if unknown, revoked, expired or its
    member, user or tenant is no longer active."""
    found = KEY_RE.match(raw.strip())
    key = ApiKey.objects.filter(prefix=found.group(1)).first() if found else None
    if key is None or not hmac.compare_digest(key.key_sha256, _sha256(raw.strip())):
        raise InvalidCredentials("Invalid API key", details=["the API key is not valid"])
    now = timezone.now()
    if key.revoked_at is not None:
        raise InvalidCredentials("Invalid API key", details=["the API key was revoked"])
    if key.expires_at is not None and key.expires_at <= now:
        raise InvalidCredentials("Invalid API key", details=["the API key has expired"])
    membership = _live_membership(user_id=key.user_id, tenant_id=key.tenant_id)
    if membership is None:
        raise InvalidCredentials("Invalid API key", details=["the key's member is no longer active"])
    if key.last_used_at is None or now - key.last_used_at > _LAST_USED_EVERY:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return _principal(membership)


# --- tokens ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_ms: int  # epoch milliseconds, as Esri answers it


def _signer() -> signing.Signer:
    return signing.Signer(salt=TOKEN_SALT, sep=".", algorithm="sha256")


def _password_stamp(user: Any) -> str:
    """Changes when the password does (Django's session hash), so tokens die with it."""
    return str(user.get_session_auth_hash())[:16]


def token_minutes(expiration: str | int | None) -> int:
    """The token lifetime in minutes: what the client asked, capped; the default if none."""
    cap = int(settings.HONUA.get("TOKEN_MAX_MINUTES", 1440))
    if expiration in (None, ""):
        return min(cap, int(settings.HONUA.get("TOKEN_MINUTES", 60)))
    try:
        minutes = int(str(expiration).strip())
    except ValueError:
        raise InvalidParameterValue("Unable to generate token.", details=["'expiration' is a number of minutes"]) from None
    if minutes <= 0:
        raise InvalidParameterValue("Unable to generate token.", details=["'expiration' must be at least 1 minute"])
    return min(minutes, cap)


def token_generate(
    *,
    username: str,
    password: str,
    request_ip: str,
    client: str = "",
    referer: str = "",
    ip: str = "",
    expiration: str | int | None = None,
    tenant: str = "",
    request: HttpRequest | None = None,
) -> IssuedToken:
    """Esri's generateToken: check the user's password and issue a token for one of their
    memberships (``tenant`` names it when they have several), bound to a referer or an IP."""
    if not username or not password:
        raise InvalidRequest("Unable to generate token.", details=["'username' and 'password' must be specified."])
    client = (client or ("referer" if referer else "requestip")).strip().lower()
    if client not in CLIENTS:
        raise InvalidParameterValue("Unable to generate token.", details=["'client' is one of referer, requestip, ip"])
    bound = {"referer": referer.strip(), "requestip": request_ip, "ip": ip.strip()}[client]
    if not bound:
        need = "referer" if client == "referer" else "ip"
        raise InvalidRequest("Unable to generate token.", details=[f"'{need}' must be specified for client={client}."])
    minutes = token_minutes(expiration)
    user = authenticate(request, username=username, password=password)
    if user is None:
        raise InvalidRequest("Unable to generate token.", details=["Invalid username or password."])
    memberships = list(
        Membership.objects.select_related("user", "tenant")
        .filter(user_id=user.pk, is_active=True, tenant__is_active=True)
        .order_by("tenant__slug")
    )
    wanted = tenant.strip()
    if wanted:
        memberships = [m for m in memberships if m.tenant.slug == wanted]
        if not memberships:
            raise InvalidRequest("Unable to generate token.", details=[f"no active membership in tenant {wanted!r}"])
    elif not memberships:
        raise InvalidRequest("Unable to generate token.", details=["the user is not a member of any tenant"])
    elif len(memberships) > 1:
        slugs = ", ".join(m.tenant.slug for m in memberships)
        raise InvalidRequest("Unable to generate token.", details=[f"the user is a member of {slugs}: pass tenant=<one of them>"])
    membership = memberships[0]
    expires_ms = int((time.time() + minutes * 60) * 1000)
    token = _signer().sign_object(
        {"m": membership.pk, "p": _password_stamp(user), "x": expires_ms, "c": client, "b": bound}
    )
    audit_record(
        action="token.issue", object_type="membership", object_id=str(membership.pk), actor=user.get_username(),
        tenant_id=membership.tenant_id, after={"client": client, "minutes": minutes},
    )
    return IssuedToken(token=token, expires_ms=expires_ms)


def _referer_matches(bound: str, referer: str) -> bool:
    """The request's Referer is the bound one, or a page under it (browsers send the page)."""
    bound = bound.rstrip("/")
    return referer.rstrip("/") == bound or referer.startswith(bound + "/")


def token_authenticate(token: str, *, referer: str, remote_addr: str) -> Principal:
    """The principal of a token; InvalidCredentials if forged, expired, used from another
    referer or address, or revoked (user, membership or tenant deactivated, password changed)."""
    try:
        claims = _signer().unsign_object(token.strip())
    except (signing.BadSignature, ValueError):
        raise InvalidCredentials("Invalid Token", details=["the token is not valid"]) from None
    if not isinstance(claims, dict) or not {"m", "p", "x", "c", "b"} <= set(claims):
        raise InvalidCredentials("Invalid Token", details=["the token is not valid"])
    if claims["x"] <= time.time() * 1000:
        raise InvalidCredentials("Invalid Token", details=["the token has expired"])
    if claims["c"] == "referer":
        if not _referer_matches(str(claims["b"]), referer):
            raise InvalidCredentials("Invalid Token", details=["the token is bound to another referer"])
    elif claims["b"] != remote_addr:
        raise InvalidCredentials("Invalid Token", details=["the token is bound to another client address"])
    membership = (
        Membership.objects.select_related("user", "tenant")
        .filter(pk=claims["m"], is_active=True, user__is_active=True, tenant__is_active=True)
        .first()
    )
    if membership is None or not hmac.compare_digest(_password_stamp(membership.user), str(claims["p"])):
        raise InvalidCredentials("Invalid Token", details=["the token was revoked"])
    return _principal(membership)


# --- requests ----------------------------------------------------------------------------------


def _bearer(value: str) -> str:
    scheme, _, credential = value.strip().partition(" ")
    return credential.strip() if scheme.lower() == "bearer" else ""


def _credential(request: HttpRequest, token: str | None) -> str:
    """The first credential the request carries: ``X-API-Key``, ``Authorization: Bearer``,
    ``X-Esri-Authorization: Bearer`` (what arcgis-python sends), then the ``token`` parameter."""
    headers = request.headers
    return (
        headers.get("X-API-Key", "").strip()
        or _bearer(headers.get("Authorization", ""))
        or _bearer(headers.get("X-Esri-Authorization", ""))
        or (token or "").strip()
    )


def credential_authenticate(credential: str, *, referer: str = "", remote_addr: str = "") -> Principal:
    """An API key or a token -> its principal."""
    if credential.startswith("hk_"):
        return api_key_authenticate(credential)
    return token_authenticate(credential, referer=referer, remote_addr=remote_addr)


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request: HttpRequest, reason: str) -> Any:
        return reason


def _session_principal(request: HttpRequest, *, unsafe: bool) -> Principal | None:
    # From the session itself: DRF replaces request.user with its own (unauthenticated) user.
    user = get_user(request) if hasattr(request, "session") else getattr(request, "user", None)
    user_id = user.pk if user is not None and user.is_authenticated else None
    if user_id is None:
        return None
    memberships = list(
        Membership.objects.select_related("user", "tenant")
        .filter(user_id=user_id, is_active=True, user__is_active=True, tenant__is_active=True)
        .order_by("tenant__slug")
    )
    if not memberships:
        return None  # an operator without a tenant browses as the anonymous caller
    if unsafe:
        if request.method in _SAFE_METHODS:
            raise PermissionDenied(
                "a browser session changes things only with POST and its CSRF token; send a token instead"
            )
        check = _CsrfCheck(lambda r: None)  # type: ignore[arg-type, return-value]
        check.process_request(request)
        reason = check.process_view(request, lambda r: None, (), {})  # type: ignore[arg-type, return-value]
        if reason:
            raise PermissionDenied(f"CSRF check failed: {reason}")
    default = settings.HONUA["DEFAULT_TENANT"]
    return _principal(next((m for m in memberships if m.tenant.slug == default), memberships[0]))


def principal_from_http(request: HttpRequest, *, token: str | None = None, unsafe: bool | None = None) -> Principal:
    """The principal of an HTTP request: its API key or token (``token``: a GPServer
    ``token`` parameter), else its browser session, else the anonymous caller.

    ``unsafe``: the request changes something (default: by its method); a session must then
    pass Django's CSRF check. Raises InvalidCredentials for bad credentials (never falls back
    to anonymous) and NotAuthenticated when anonymous callers may not run anything.
    """
    credential = _credential(request, token)
    if credential:
        return credential_authenticate(
            credential,
            referer=request.headers.get("Referer", ""),
            remote_addr=str(request.META.get("REMOTE_ADDR", "")),
        )
    unsafe = request.method not in _SAFE_METHODS if unsafe is None else unsafe
    session = _session_principal(request, unsafe=unsafe)
    if session is not None:
        return session
    tenant = settings.HONUA["DEFAULT_TENANT"]
    if not anonymous_allowed(tenant_slug=tenant):
        raise NotAuthenticated("this server requires authentication: send a token or an API key")
    return Principal(tenant=tenant)


def membership_set(*, username: str, tenant_slug: str, role: str, actor: str = "") -> Membership:
    """Create or update a user's membership of a tenant (the tenant must exist)."""
    if role not in Role.values:
        raise InvalidParameterValue(f"role is one of {', '.join(Role.values)}")
    user = get_user_model().objects.filter(username=username).first()
    tenant = Tenant.objects.filter(slug=tenant_slug).first()
    if user is None or tenant is None:
        raise InvalidRequest(f"no user {username!r}" if user is None else f"no tenant {tenant_slug!r}")
    with transaction.atomic():
        membership, created = Membership.objects.update_or_create(
            user=user, tenant=tenant, defaults={"role": role, "is_active": True}
        )
        audit_record(
            action="membership.create" if created else "membership.update", object_type="membership",
            object_id=str(membership.pk), actor=actor, tenant_id=tenant.pk,
            after={"user": username, "role": role, "is_active": True},
        )
    return membership
