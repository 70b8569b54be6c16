"""ArcGIS Server's token service on the wire (the views are ``TokenGenerateView`` and
``InfoView`` in ``gpserver.views``).

``tokens/generateToken`` (also ``tokens/``, which older clients call with ``request=getToken``)
takes Esri's parameters: ``username``, ``password``, ``expiration`` (minutes, capped by
``HONUA_TOKEN_MAX_MINUTES``), ``client`` = ``referer`` | ``requestip`` | ``ip`` with ``referer``
or ``ip``; and Honua's ``tenant`` for a user who is a member of several tenants. It answers
``{"token", "expires" (epoch ms), "ssl"}``. A request then carries the token as the ``token``
parameter or in ``X-Esri-Authorization: Bearer`` (arcgis-python) or ``Authorization: Bearer``.
Token errors are Esri's: 499 "Token Required" when a resource needs one and none was sent, 498
"Invalid Token" for a bad, expired, revoked or wrongly bound one (arcgis-python looks for those
words in the body and retries once without the token).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from controlplane.exceptions import (
    HonuaError,
    InvalidCredentials,
    NotAuthenticated,
    PermissionDenied,
)
from controlplane.services.auth import IssuedToken

TOKEN_REQUIRED = "Token Required"
INVALID_TOKEN = "Invalid Token"
NO_PERMISSION = "You do not have permissions to access this resource or perform this operation."


def auth_info(*, token_url: str, minutes: int) -> dict[str, Any]:
    """``authInfo`` of ``rest/info``: where clients get tokens and how long they last."""
    return {"isTokenBasedSecurity": True, "tokenServicesUrl": token_url, "shortLivedTokenValidity": minutes}


class TokenRequest(TypedDict):
    username: str
    password: str
    client: str
    referer: str
    ip: str
    expiration: str | None
    tenant: str


def token_request(params: Mapping[str, str]) -> TokenRequest:
    """The generateToken form -> keyword arguments of ``token_generate``."""
    return {
        "username": params.get("username", ""),
        "password": params.get("password", ""),
        "client": params.get("client", ""),
        "referer": params.get("referer", ""),
        "ip": params.get("ip", ""),
        "expiration": params.get("expiration"),
        "tenant": params.get("tenant", ""),
    }


def token_document(issued: IssuedToken, *, ssl: bool) -> dict[str, Any]:
    return {"token": issued.token, "expires": issued.expires_ms, "ssl": ssl}


def auth_error(exc: HonuaError) -> tuple[int, str] | None:
    """Esri's code and message for an authentication or permission error (None: another error)."""
    if isinstance(exc, InvalidCredentials):
        return 498, INVALID_TOKEN
    if isinstance(exc, NotAuthenticated):
        return 499, TOKEN_REQUIRED
    if isinstance(exc, PermissionDenied):
        return 403, NO_PERMISSION
    return None
