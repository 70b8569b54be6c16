"""The one guard for every outbound request Honua makes on a client's behalf (SSRF).

Every URL is vetted before each connection, the first and every redirect:

- scheme http or https; no credentials, whitespace, control characters or backslashes;
- an IP address only in its standard notation (``127.1``, ``2130706433``, ``0x7f.0.0.1``
  and ``0177.0.0.1`` name different hosts to different parsers, so they are refused);
- a port of ``HONUA_OUTBOUND_ALLOW_PORTS`` (any port on the operator's allowed hosts);
- when the tenant's policy has ``outbound_allow_hosts``, a host on that list;
- cloud metadata host names are refused; the host is resolved and every address refused if
  loopback, private, link-local, carrier-grade NAT, multicast, reserved, unspecified,
  IPv4-mapped or IPv4-compatible, Teredo, a 6to4 or NAT64 embedding of such an IPv4 address,
  or a cloud metadata address. Hosts on the operator's ``HONUA_OUTBOUND_ALLOW_HOSTS`` may
  resolve to private addresses (their own services), never to metadata ones.

The connection goes to the vetted address (no second lookup, so no DNS rebinding); redirects
are followed only by vetting each hop again, up to a hop limit; each request has connect and
read timeouts and an overall deadline (its sockets are shut down when it passes, however
slowly the server trickles); a response body is limited while it streams in.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
import zlib
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson
import requests
import urllib3
from django.conf import settings
from requests.adapters import HTTPAdapter

from controlplane.exceptions import (
    InvalidParameterValue,
    OutboundFailed,
    OutboundRefused,
    OutboundTimeout,
    OutboundTooLarge,
)

__all__ = [
    "ALLOWED_SCHEMES", "CheckedTarget", "OutboundFailed", "OutboundRefused", "OutboundResponse",
    "OutboundTimeout", "OutboundTooLarge", "outbound_allow_hosts_parse", "outbound_check",
    "outbound_fetch", "outbound_post_json", "outbound_url_precheck",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = ("http", "https")
POLICY_KEY = "outbound_allow_hosts"
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_METADATA_HOSTS = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal"}
)
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (classic)
    )
)
_NUMERIC_HOST = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}")
_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*")
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024

_dns_pool: ThreadPoolExecutor | None = None
_dns_lock = threading.Lock()


@dataclass(frozen=True)
class CheckedTarget:
    url: str
    host: str
    address: str
    port: int
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutboundResponse:
    """A fetched resource: status, headers, the body (within the size limit), the final URL."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    url: str
    redirects: tuple[str, ...] = ()

    @property
    def media_type(self) -> str:
        return str(self.headers.get("Content-Type", "")).split(";")[0].strip().lower()


# --- settings and policy --------------------------------------------------------------------


def _honua(key: str, default: Any) -> Any:
    value = settings.HONUA.get(key)
    return default if value is None else value


def _global_hosts() -> list[str]:
    return [str(h) for h in _honua("OUTBOUND_ALLOW_HOSTS", [])]


def _allowed_ports() -> frozenset[int]:
    return frozenset(int(p) for p in _honua("OUTBOUND_ALLOW_PORTS", [80, 443, 8080, 8443]) if str(p).strip())


def outbound_allow_hosts_parse(value: Any) -> list[str] | None:
    """A tenant policy's ``outbound_allow_hosts``: None (no restriction) or a list of host
    names, ``*.example.org`` patterns or IP addresses; InvalidParameterValue otherwise."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(h, str) and h.strip() for h in value):
        raise InvalidParameterValue(
            f"tenant policy: {POLICY_KEY} must be a list of host names (\"*.example.org\" for a domain)"
        )
    return [h.strip().lower().strip("[]").rstrip(".") for h in value]


def _tenant_hosts(tenant: str | None) -> list[str] | None:
    if not tenant:
        return None
    from controlplane.services.policy import tenant_policy_get

    policy = tenant_policy_get(tenant).tenant.policy or {}
    return outbound_allow_hosts_parse(policy.get(POLICY_KEY))


def _matches(host: str, patterns: Iterable[str]) -> bool:
    for raw in patterns:
        pattern = raw.strip().lower().strip("[]").rstrip(".")
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return True
        elif pattern and host == pattern:
            return True
    return False


# --- addresses -------------------------------------------------------------------------------


def _metadata(addr: IPAddress) -> bool:
    """A metadata address, itself or embedded in an IPv6 address."""
    if isinstance(addr, ipaddress.IPv6Address):
        nat64 = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF) if addr in _NAT64 else None
        embedded = addr.ipv4_mapped or addr.sixtofour or nat64
        if embedded is not None and embedded in _METADATA_ADDRESSES:
            return True
    return addr in _METADATA_ADDRESSES


def _address_refusal(addr: IPAddress) -> str | None:
    """Why a client may not make Honua connect to ``addr`` (None: it may)."""
    if _metadata(addr):
        return "a cloud metadata address"
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        if addr.teredo is not None:
            return "a Teredo address"
        if addr in _NAT64_LOCAL:
            return "a local-use NAT64 address"
        if addr in _IPV4_COMPATIBLE and not (addr.is_loopback or addr.is_unspecified):
            return "an IPv4-compatible IPv6 address"
        embedded = addr.sixtofour or (
            ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF) if addr in _NAT64 else None
        )
        if embedded is not None:
            # The IPv4 address decides (NAT64 sits in a range Python calls reserved).
            why = _address_refusal(embedded)
            return f"a 6to4/NAT64 address embedding {why} ({embedded})" if why else None
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


def _resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({_sockaddr_host(info[4]).split("%")[0] for info in infos})


def _resolve_within(host: str, port: int, seconds: float) -> list[str]:
    """``_resolve`` with a time limit (getaddrinfo has none of its own)."""
    global _dns_pool
    with _dns_lock:
        if _dns_pool is None:
            _dns_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="honua-dns")
    future = _dns_pool.submit(_resolve, host, port)
    try:
        return future.result(timeout=max(0.01, seconds))
    except FutureTimeout:
        raise OutboundTimeout(f"resolving {host!r} took longer than {seconds:g} s") from None
    except (socket.gaierror, UnicodeError):
        raise OutboundRefused(f"the host {host!r} does not resolve") from None


# --- URLs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Parts:
    scheme: str
    host: str
    port: int
    literal: IPAddress | None
    exempt: bool  # on the operator's allow-list


def _parts(url: str) -> _Parts:
    if not isinstance(url, str) or not url:
        raise OutboundRefused("the URL is empty")
    if _UNSAFE.search(url):
        raise OutboundRefused("the URL contains whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port_given = parts.port
    except ValueError as exc:
        raise OutboundRefused(f"the URL is malformed ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise OutboundRefused(f"URL scheme {parts.scheme!r} is not allowed; use http or https")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise OutboundRefused("URLs with credentials are not allowed")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise OutboundRefused("the URL has no host")
    literal: IPAddress | None
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if isinstance(literal, ipaddress.IPv6Address) and literal.scope_id:
        raise OutboundRefused(f"the host {host!r} is not a valid address (a zone is local)")
    if literal is None:
        if "%" in host or ":" in host:
            raise OutboundRefused(f"the host {host!r} is not a valid address")
        if _NUMERIC_HOST.fullmatch(host):
            raise OutboundRefused(f"the host {host!r} is an IP address in a non-standard notation")
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise OutboundRefused(f"the host {host!r} is not a valid host name") from None
        if not _HOST_NAME.fullmatch(host) or len(host) > 253:
            raise OutboundRefused(f"the host {host!r} is not a valid host name")
    port = port_given if port_given is not None else (443 if scheme == "https" else 80)
    exempt = _matches(host, _global_hosts())
    ports = _allowed_ports()
    if not exempt and ports and port not in ports:
        raise OutboundRefused(
            f"port {port} is not allowed; ports are: " + ", ".join(str(p) for p in sorted(ports))
        )
    return _Parts(scheme=scheme, host=host, port=port, literal=literal, exempt=exempt)


def _refuse_address(host: str, addr: IPAddress, exempt: bool) -> None:
    why = _address_refusal(addr)
    # The operator's allowed hosts may be private (their own services); metadata never.
    if not why or (exempt and not _metadata(addr)):
        return
    if str(addr) == host:
        raise OutboundRefused(f"the host {host!r} is {why}")
    raise OutboundRefused(f"the host {host!r} resolves to {why} ({addr})")


def outbound_url_precheck(url: str, *, where: str = "") -> str:
    """The checks that need neither DNS nor the tenant (scheme, spelling, port, literal
    addresses, metadata names), for refusing a URL when it is submitted (``where``: what the
    message names); returns the host. ``outbound_check`` runs before every connection."""
    try:
        parts = _parts(url)
        if parts.host in _METADATA_HOSTS:
            raise OutboundRefused(f"the host {parts.host!r} is a cloud metadata service")
        if parts.literal is not None:
            _refuse_address(parts.host, parts.literal, parts.exempt)
    except OutboundRefused as exc:
        if not where:
            raise
        raise OutboundRefused(f"{where}: {exc.message}") from None
    return parts.host


def outbound_check(
    url: str, *, tenant: str | None = None, resolve_timeout: float | None = None
) -> CheckedTarget:
    """Vet a URL and resolve its host (``tenant``: whose allow-list applies; ``resolve_timeout``:
    seconds the lookup may take); raise OutboundRefused with the reason."""
    parts = _parts(url)
    host = parts.host
    if host in _METADATA_HOSTS:
        raise OutboundRefused(f"the host {host!r} is a cloud metadata service")
    tenant_hosts = _tenant_hosts(tenant)
    if tenant_hosts is not None and not _matches(host, tenant_hosts):
        raise OutboundRefused(f"the host {host!r} is not on the tenant's list of allowed hosts")
    if parts.literal is not None:
        addresses = [str(parts.literal)]
    else:
        seconds = resolve_timeout if resolve_timeout is not None else float(
            _honua("OUTBOUND_CONNECT_TIMEOUT_SECONDS", 5.0)
        )
        addresses = _resolve_within(host, parts.port, seconds)
    if not addresses:
        raise OutboundRefused(f"the host {host!r} does not resolve")
    for raw in addresses:
        _refuse_address(host, ipaddress.ip_address(raw), parts.exempt)
    return CheckedTarget(url=url, host=host, address=addresses[0], port=parts.port, addresses=tuple(addresses))


# --- connections -----------------------------------------------------------------------------


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed, or detached by the TLS wrapper (which is watched too)


class _Deadline:
    """Shuts a request's sockets down when its time is up: a blocked read then returns, even
    from a server that sends one byte just inside every read timeout."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)

    def cancel(self) -> None:
        self._timer.cancel()


class _PinnedAdapter(HTTPAdapter):
    """Connects to the vetted address while keeping the URL's host for TLS and Host."""

    def __init__(self, target: CheckedTarget, deadline: _Deadline | None = None) -> None:
        self._target = target
        self._deadline = deadline
        super().__init__(max_retries=0)

    def get_connection_with_tls_context(
        self, request: Any, verify: Any, proxies: Any = None, cert: Any = None
    ) -> Any:
        conn = super().get_connection_with_tls_context(request, verify, proxies=proxies, cert=cert)
        address = self._target.address
        deadline = self._deadline
        base = conn.ConnectionCls

        class PinnedConnection(base):  # type: ignore[valid-type, misc]
            def _new_conn(self) -> Any:
                self._dns_host = address  # urllib3 resolves this name; give it the vetted address
                sock = super()._new_conn()
                if deadline is not None:
                    deadline.watch(sock)
                return sock

            def connect(self) -> None:
                super().connect()
                if deadline is not None and self.sock is not None:
                    deadline.watch(self.sock)  # the TLS socket, once wrapped

        conn.ConnectionCls = PinnedConnection
        return conn


def _session(target: CheckedTarget, deadline: _Deadline) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies or .netrc from the environment
    adapter = _PinnedAdapter(target, deadline)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _timeouts(total: float) -> tuple[float, float]:
    connect = float(_honua("OUTBOUND_CONNECT_TIMEOUT_SECONDS", 5.0))
    read = float(_honua("OUTBOUND_READ_TIMEOUT_SECONDS", 30.0))
    return min(connect, total), min(read, total)


def _exchange(
    method: str, url: str, *, body: bytes | None, headers: dict[str, str], tenant: str | None,
    deadline: _Deadline, max_redirects: int,
) -> tuple[requests.Response, requests.Session, tuple[str, ...]]:
    """Send a request, following up to ``max_redirects`` redirects (each hop vetted again; 0:
    a redirect is the answer). The body of the response is not read yet; the caller closes
    the response and then its session."""
    connect, read = _timeouts(deadline.seconds)
    current = url
    hops: list[str] = []
    while True:
        target = outbound_check(current, tenant=tenant, resolve_timeout=deadline.remaining())
        session = _session(target, deadline)
        try:
            response = session.request(
                method, current, data=body, headers=headers, timeout=(connect, read),
                allow_redirects=False, stream=True,
            )
        except requests.RequestException as exc:
            session.close()
            if deadline.expired or isinstance(exc, requests.Timeout):
                raise OutboundTimeout(f"{target.host} did not answer within {deadline.seconds:g} s") from None
            raise OutboundFailed(f"{target.host}: {type(exc).__name__}: {exc}") from None
        location = response.headers.get("Location")
        if response.status_code not in _REDIRECTS or not location or max_redirects == 0:
            return response, session, tuple(hops)
        response.close()
        session.close()
        if len(hops) >= max_redirects:
            raise OutboundFailed(f"more than {max_redirects} redirects from {url}")
        if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
            method, body = "GET", None
        current = urljoin(current, location)
        hops.append(current)


def _decoder(encoding: str) -> Any:
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib framing, told by its header
    raise OutboundFailed(f"the response is encoded as {encoding!r}, which Honua does not decode")


def _read_limited(response: requests.Response, max_bytes: int, deadline: _Deadline) -> bytes:
    """The body, refused as soon as it (decoded) passes ``max_bytes``."""
    declared = str(response.headers.get("Content-Length", "")).strip()
    if declared.isdigit() and int(declared) > max_bytes:
        raise OutboundTooLarge(f"the resource is {declared} bytes; at most {max_bytes} are accepted")
    decoder = _decoder(str(response.headers.get("Content-Encoding", "")).strip().lower())
    out = bytearray()
    try:
        for chunk in response.raw.stream(_CHUNK, decode_content=False):
            if decoder is not None:
                # A small compressed chunk may inflate enormously: never decode past the limit.
                chunk = decoder.decompress(chunk, max_bytes + 1 - len(out))
                if decoder.unconsumed_tail:
                    raise OutboundTooLarge(f"the resource exceeds {max_bytes} bytes once decoded")
            out += chunk
            if len(out) > max_bytes:
                raise OutboundTooLarge(f"the resource exceeds {max_bytes} bytes")
            if deadline.expired:
                break
        if decoder is not None:
            out += decoder.flush()
            if len(out) > max_bytes:
                raise OutboundTooLarge(f"the resource exceeds {max_bytes} bytes once decoded")
    except (urllib3.exceptions.HTTPError, requests.RequestException, OSError, zlib.error) as exc:
        if not deadline.expired:
            raise OutboundFailed(f"reading the response failed: {type(exc).__name__}: {exc}") from None
    if deadline.expired:
        raise OutboundTimeout(f"the response took longer than {deadline.seconds:g} s")
    return bytes(out)


# --- requests --------------------------------------------------------------------------------


def outbound_fetch(
    url: str,
    *,
    tenant: str | None = None,
    max_bytes: int | None = None,
    timeout: float | None = None,
    max_redirects: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> OutboundResponse:
    """GET a vetted URL: redirects followed and vetted hop by hop, the body read within
    ``max_bytes`` and everything within ``timeout`` seconds (defaults: settings). Raises
    OutboundRefused, OutboundTooLarge, OutboundTimeout or OutboundFailed; any HTTP status is
    returned (the caller decides what a 404 means)."""
    limit = int(max_bytes if max_bytes is not None else _honua("OUTBOUND_MAX_BYTES", 100 * 1024 * 1024))
    seconds = float(timeout or _honua("OUTBOUND_DEADLINE_SECONDS", 60.0))
    hops = int(max_redirects if max_redirects is not None else _honua("OUTBOUND_MAX_REDIRECTS", 5))
    deadline = _Deadline(seconds)
    sent = {"User-Agent": "Honua", "Accept-Encoding": "identity", **(headers or {})}
    try:
        response, session, redirects = _exchange(
            "GET", url, body=None, headers=sent, tenant=tenant, deadline=deadline, max_redirects=hops
        )
        try:
            content = _read_limited(response, limit, deadline)
        finally:
            response.close()
            session.close()
        return OutboundResponse(
            status=response.status_code, headers=dict(response.headers), content=content,
            url=redirects[-1] if redirects else url, redirects=redirects,
        )
    finally:
        deadline.cancel()


def outbound_post_json(
    url: str, payload: Any, *, timeout: float | None = None, tenant: str | None = None
) -> int:
    """POST JSON to a vetted URL without following redirects; returns the HTTP status (the
    answer's body is not read). ``timeout`` bounds the whole attempt."""
    seconds = float(timeout or settings.HONUA["CALLBACK_TIMEOUT_SECONDS"])
    deadline = _Deadline(seconds)
    try:
        response, session, _ = _exchange(
            "POST", url, body=orjson.dumps(payload),
            headers={"Content-Type": "application/json", "User-Agent": "Honua"},
            tenant=tenant, deadline=deadline, max_redirects=0,
        )
        response.close()
        session.close()
        return response.status_code
    finally:
        deadline.cancel()
