"""The one guard for every outbound request Honua makes on a client's behalf (SSRF).

Allowed schemes only; the host is resolved and every address refused if loopback, private,
link-local, CGNAT, multicast, reserved, unspecified, IPv4-mapped or a cloud metadata
address, unless the host is on the operator's allow-list; the connection goes to the
checked address (no second lookup), redirects are not followed, time and size are bounded.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from controlplane.exceptions import InvalidParameterValue

ALLOWED_SCHEMES = ("http", "https")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data"}


class OutboundRefused(InvalidParameterValue):
    code = "outbound-refused"
    title = "URL not allowed"


class OutboundFailed(InvalidParameterValue):
    """The remote end could not be reached, was too slow, or sent too much."""

    code = "outbound-failed"
    title = "Remote request failed"


@dataclass(frozen=True)
class CheckedTarget:
    url: str
    host: str
    address: str
    port: int


def _address_refusal(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return "an IPv4-mapped IPv6 address"
    for flag, why in (
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_unspecified", "an unspecified address"),
        ("is_reserved", "a reserved address"),
        ("is_private", "a private address"),
    ):
        if getattr(addr, flag):
            return why
    if isinstance(addr, ipaddress.IPv4Address) and addr in _CGNAT:
        return "a carrier-grade NAT address"
    if not addr.is_global:
        return "a non-global address"
    return None


def _sockaddr_host(sockaddr: tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes]) -> str:
    """The textual IP address of a ``getaddrinfo`` socket address."""
    host = sockaddr[0]
    # Invariant: IPv4 and IPv6 socket addresses start with the address as text; (int, bytes)
    # only comes back for AF_INET6 from a CPython built without IPv6 support.
    assert isinstance(host, str), f"unexpected socket address {sockaddr!r}"
    return host


def outbound_check(url: str) -> CheckedTarget:
    """Resolve and vet a URL; raise OutboundRefused with the reason."""
    parts = urlsplit(url)
    if parts.scheme not in ALLOWED_SCHEMES:
        raise OutboundRefused(f"URL scheme {parts.scheme!r} is not allowed; use http or https")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise OutboundRefused("the URL has no host")
    if parts.username or parts.password:
        raise OutboundRefused("URLs with credentials are not allowed")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    allowed = {h.lower() for h in settings.HONUA["OUTBOUND_ALLOW_HOSTS"]}
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise OutboundRefused(f"the host {host!r} does not resolve") from None
    addresses = sorted({_sockaddr_host(info[4]) for info in infos})
    if host not in allowed:
        if host in _METADATA_HOSTS:
            raise OutboundRefused(f"the host {host!r} is a cloud metadata service")
        for raw in addresses:
            why = _address_refusal(ipaddress.ip_address(raw.split("%")[0]))
            if why:
                raise OutboundRefused(f"the host {host!r} resolves to {why} ({raw})")
    return CheckedTarget(url=url, host=host, address=addresses[0], port=port)


class _PinnedAdapter(HTTPAdapter):
    """Connects to the vetted address while keeping the URL's host for TLS and Host."""

    def __init__(self, target: CheckedTarget) -> None:
        self._target = target
        super().__init__(max_retries=0)

    def get_connection_with_tls_context(
        self, request: Any, verify: Any, proxies: Any = None, cert: Any = None
    ) -> Any:
        conn = super().get_connection_with_tls_context(request, verify, proxies=proxies, cert=cert)
        address = self._target.address
        base = conn.ConnectionCls

        class PinnedConnection(base):  # type: ignore[valid-type, misc]
            def _new_conn(self) -> Any:
                self._dns_host = address  # urllib3 resolves this name; give it the vetted address
                return super()._new_conn()

        conn.ConnectionCls = PinnedConnection
        return conn


def _session(target: CheckedTarget) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: it would skip the pinning
    adapter = _PinnedAdapter(target)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def outbound_post_json(url: str, payload: Any, *, timeout: float | None = None) -> int:
    """POST JSON to a vetted URL without following redirects; returns the HTTP status."""
    target = outbound_check(url)
    session = _session(target)
    response = session.post(
        url,
        data=orjson.dumps(payload),
        headers={"Content-Type": "application/json", "User-Agent": "Honua"},
        timeout=timeout or settings.HONUA["CALLBACK_TIMEOUT_SECONDS"],
        allow_redirects=False,
        stream=True,
    )
    response.close()
    return response.status_code


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    media_type: str
    body: bytes


def outbound_get(
    url: str, *, params: dict[str, str] | None = None, timeout: float, max_bytes: int
) -> OutboundResponse:
    """GET a vetted URL without following redirects, reading at most ``max_bytes`` within
    ``timeout`` seconds in all (not per read: a server trickling bytes is cut off too).
    OutboundRefused for a refused target; OutboundFailed when it cannot be reached, is too
    slow or sends too much."""
    target = outbound_check(url)
    session = _session(target)
    deadline = time.monotonic() + timeout
    try:
        with session.get(
            url, params=params, headers={"Accept": "application/json", "User-Agent": "Honua"},
            timeout=timeout, allow_redirects=False, stream=True,
        ) as response:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_content(chunk_size=64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise OutboundFailed(f"the answer of {target.host} exceeds {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise OutboundFailed(f"{target.host} did not answer within {timeout:g} s")
                chunks.append(chunk)
            media = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            return OutboundResponse(status=response.status_code, media_type=media, body=b"".join(chunks))
    except requests.Timeout:
        raise OutboundFailed(f"{target.host} did not answer within {timeout:g} s") from None
    except requests.RequestException as exc:
        raise OutboundFailed(f"{target.host} could not be reached ({type(exc).__name__})") from None
    finally:
        session.close()
