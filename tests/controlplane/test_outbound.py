"""The SSRF guard: every refused address class, host spellings, ports, the tenant's allow-list,
and real requests to a loopback HTTP server (allowed through the operator's allow-list):
redirects vetted hop by hop, the size limit while the body streams, timeouts and the deadline.
No outbound HTTP client may be imported anywhere else in the source tree."""

from __future__ import annotations

import ast
import gzip
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import orjson
import pytest

from controlplane.contracts import ExecutionMode, ExecutionRequest, Subscriber, Surface
from controlplane.exceptions import InvalidParameterValue
from controlplane.models import ProcessRun, Tenant
from controlplane.services import outbound
from controlplane.services.outbound import (
    OutboundFailed,
    OutboundRefused,
    OutboundTimeout,
    OutboundTooLarge,
    outbound_check,
    outbound_fetch,
    outbound_post_json,
    outbound_url_precheck,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_allowed_hosts(settings):
    settings.HONUA = {**settings.HONUA, "OUTBOUND_ALLOW_HOSTS": [], "OUTBOUND_ALLOW_PORTS": [80, 443, 8080, 8443]}


def _resolves_to(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
    """DNS answers for names (the resolver is the system's, outside Honua)."""

    def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise outbound.socket.gaierror(host)
        return answers[host]

    monkeypatch.setattr(outbound, "_resolve", resolve)


# --- addresses ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.45.6.7", "loopback"),
        ("[::1]", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.5.4", "private"),
        ("192.168.0.10", "private"),
        ("[fd12:3456::1]", "private"),
        ("169.254.10.20", "link-local"),
        ("[fe80::1]", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("224.0.0.251", "multicast"),
        ("[ff02::1]", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("[::]", "unspecified"),
        ("0.1.2.3", "private"),  # 0.0.0.0/8: "this network"
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),  # limited broadcast
        ("198.18.0.1", "private"),  # benchmarking
        ("[::ffff:127.0.0.1]", "IPv4-mapped"),
        ("[::ffff:8.8.8.8]", "IPv4-mapped"),  # mapped addresses are refused whatever they map
        ("[::7f00:1]", "IPv4-compatible"),
        ("[2002:7f00:1::1]", "6to4/NAT64 address embedding a loopback address"),
        ("[2002:a00:1::1]", "6to4/NAT64 address embedding a private address"),
        ("[64:ff9b::a9fe:a9fe]", "cloud metadata address"),  # NAT64 of 169.254.169.254
        ("[::ffff:169.254.169.254]", "cloud metadata address"),
        ("[64:ff9b::c0a8:1]", "6to4/NAT64 address embedding a private address"),
        ("[64:ff9b:1::a00:1]", "local-use NAT64"),
        ("[2001:0:4136:e378:8000:63bf:3fff:fdd2]", "Teredo"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.170.2", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("[fd00:ec2::254]", "cloud metadata"),
    ],
)
def test_every_non_public_address_class_is_refused(host, why):
    url = f"http://{host}/latest/meta-data"
    with pytest.raises(OutboundRefused, match=why):
        outbound_check(url)
    with pytest.raises(OutboundRefused, match=why):
        outbound_url_precheck(url)  # a literal address is refused already at submission


@pytest.mark.parametrize("host", ["8.8.8.8", "[2606:4700:4700::1111]", "[2002:808:808::1]", "[64:ff9b::808:808]"])
def test_public_addresses_pass(host):
    target = outbound_check(f"https://{host}/x")
    assert target.port == 443 and target.address == host.strip("[]")


def test_a_name_is_refused_when_any_of_its_addresses_is_not_public(monkeypatch):
    _resolves_to(monkeypatch, {
        "public.example": ["93.184.215.14"],
        "mixed.example": ["93.184.215.14", "10.0.0.7"],
        "sixtofour.example": ["2002:c0a8:101::1"],
        "mapped.example": ["::ffff:10.1.1.1"],
    })
    assert outbound_check("http://public.example/a").address == "93.184.215.14"
    with pytest.raises(OutboundRefused, match=r"resolves to a private address \(10.0.0.7\)"):
        outbound_check("http://mixed.example/a")
    with pytest.raises(OutboundRefused, match="embedding a private address"):
        outbound_check("http://sixtofour.example/a")
    with pytest.raises(OutboundRefused, match="IPv4-mapped"):
        outbound_check("http://mapped.example/a")
    with pytest.raises(OutboundRefused, match="does not resolve"):
        outbound_check("http://nowhere.example/a")


def test_localhost_is_refused_after_real_resolution():
    with pytest.raises(OutboundRefused, match="resolves to a loopback address"):
        outbound_check("http://localhost/x")


@pytest.mark.parametrize(
    "host", ["metadata.google.internal", "METADATA.GOOGLE.INTERNAL.", "metadata.goog", "metadata", "instance-data"]
)
def test_metadata_hosts_are_refused_by_name_before_any_lookup(host, monkeypatch):
    _resolves_to(monkeypatch, {host.lower().rstrip("."): ["93.184.215.14"]})  # even if public
    with pytest.raises(OutboundRefused, match="cloud metadata service"):
        outbound_check(f"http://{host}/computeMetadata/v1/")


def test_metadata_addresses_stay_refused_for_allowed_hosts(settings, monkeypatch):
    settings.HONUA = {**settings.HONUA, "OUTBOUND_ALLOW_HOSTS": ["169.254.169.254", "internal.example"]}
    _resolves_to(monkeypatch, {"internal.example": ["10.0.0.8", "169.254.169.254"]})
    with pytest.raises(OutboundRefused, match="cloud metadata address"):
        outbound_check("http://169.254.169.254/latest/meta-data")
    with pytest.raises(OutboundRefused, match="cloud metadata address"):
        outbound_check("http://internal.example/")
    for embedded in ("::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1"):
        _resolves_to(monkeypatch, {"internal.example": [embedded]})
        with pytest.raises(OutboundRefused, match="metadata address"):
            outbound_check("http://internal.example/")
    _resolves_to(monkeypatch, {"internal.example": ["10.0.0.8"]})
    assert outbound_check("http://internal.example:9000/").address == "10.0.0.8"  # private: allowed


# --- URL spellings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",  # 127.0.0.1 as one decimal number
        "http://0x7f000001/",
        "http://0x7f.0x0.0x0.0x1/",
        "http://0177.0.0.1/",  # octal
        "http://017700000001/",
        "http://127.1/",
        "http://127.0.1/",
        "http://0/",
        "http://3232235777/",  # 192.168.1.1
        "http://0xa9fea9fe/",  # 169.254.169.254
    ],
)
def test_numeric_host_spellings_are_refused(url, settings):
    settings.HONUA = {**settings.HONUA, "OUTBOUND_ALLOW_HOSTS": ["127.0.0.1"]}
    with pytest.raises(OutboundRefused, match="non-standard notation"):
        outbound_check(url)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.org/x", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://example.org:70/_x", "scheme"),
        ("dict://example.org:11211/stat", "scheme"),
        ("http://user:pw@example.org/", "credentials"),
        ("http://user@example.org/", "credentials"),
        ("http://example.org\\@127.0.0.1/", "backslashes"),
        ("http://example.org /x", "whitespace"),
        ("http://exa\tmple.org/", "whitespace"),
        ("http:///x", "no host"),
        ("http://example.org:99999/", "malformed"),
        ("http://example.org:0/", "port 0 is not allowed"),
        ("http://example.org:25/", "port 25 is not allowed"),
        ("http://example.org:6379/", "port 6379 is not allowed"),
        ("http://[fe80::1%25eth0]/", "not a valid address"),
        ("http://exa_mple..org/", "not a valid host name"),
    ],
)
def test_malformed_or_disallowed_urls_are_refused(url, why):
    with pytest.raises(OutboundRefused, match=why):
        outbound_check(url)


def test_ports_policy(settings, monkeypatch):
    _resolves_to(monkeypatch, {"api.example": ["93.184.215.14"], "own.example": ["10.9.8.7"]})
    assert outbound_check("https://api.example:8443/").port == 8443
    settings.HONUA = {**settings.HONUA, "OUTBOUND_ALLOW_PORTS": []}  # any port
    assert outbound_check("http://api.example:6379/").port == 6379
    settings.HONUA = {**settings.HONUA, "OUTBOUND_ALLOW_PORTS": [443], "OUTBOUND_ALLOW_HOSTS": ["own.example"]}
    with pytest.raises(OutboundRefused, match="port 80"):
        outbound_check("http://api.example/")
    assert outbound_check("http://own.example:9200/").port == 9200  # the operator's own service


def test_precheck_names_what_it_checked():
    with pytest.raises(OutboundRefused, match=r"^subscriber successUri: the host '10.0.0.1' is a private address$"):
        outbound_url_precheck("http://10.0.0.1/cb", where="subscriber successUri")
    assert outbound_url_precheck("https://hooks.example.org/cb") == "hooks.example.org"  # no lookup


# --- the tenant's allow-list -------------------------------------------------------------------


def _tenant_policy(policy: dict) -> Tenant:
    from controlplane.services.policy_versions import tenant_policy_set

    tenant = Tenant.objects.get(slug="demo")
    return tenant_policy_set(tenant_id=tenant.pk, policy=policy, actor="test")


@pytest.mark.django_db
def test_the_tenant_allow_list_restricts_hosts(honua_catalog, monkeypatch, settings):
    _resolves_to(monkeypatch, {
        "hooks.example.org": ["93.184.215.14"], "a.hooks.example.org": ["93.184.215.15"],
        "other.example": ["93.184.215.16"], "internal.example": ["10.0.0.9"],
    })
    assert outbound_check("https://other.example/x", tenant="demo").address == "93.184.215.16"  # no list
    _tenant_policy({"outbound_allow_hosts": ["hooks.example.org", "*.hooks.example.org", "internal.example"]})
    assert outbound_check("https://hooks.example.org/x", tenant="demo").host == "hooks.example.org"
    assert outbound_check("https://a.hooks.example.org/x", tenant="demo").host == "a.hooks.example.org"
    with pytest.raises(OutboundRefused, match="not on the tenant's list of allowed hosts"):
        outbound_check("https://other.example/x", tenant="demo")
    # A tenant's list narrows what it may reach; it never opens private addresses.
    with pytest.raises(OutboundRefused, match="private address"):
        outbound_check("https://internal.example/x", tenant="demo")
    _tenant_policy({"outbound_allow_hosts": []})
    with pytest.raises(OutboundRefused, match="not on the tenant's list"):
        outbound_check("https://hooks.example.org/x", tenant="demo")


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["hooks.example.org", [""], [3], {"a": 1}])
def test_a_malformed_tenant_allow_list_is_refused_when_saved(honua_catalog, bad):
    with pytest.raises(InvalidParameterValue, match="outbound_allow_hosts"):
        _tenant_policy({"outbound_allow_hosts": bad})


# --- real requests to a loopback server --------------------------------------------------------

BOMB = gzip.compress(b"\0" * (20 * 1024 * 1024))


class _Server(http.server.BaseHTTPRequestHandler):
    sent: dict[str, int] = {}
    posted: list[tuple[str, bytes]] = []

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        if "Content_Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drip(self, name: str, chunk: bytes, pause: float, seconds: float, **headers: str) -> None:
        """Body bytes until the client hangs up (or ``seconds`` pass)."""
        self.send_response(200)
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()
        end = time.monotonic() + seconds
        _Server.sent[name] = 0
        try:
            while time.monotonic() < end:
                self.wfile.write(chunk)
                self.wfile.flush()
                _Server.sent[name] += len(chunk)
                time.sleep(pause)
        except OSError:
            pass

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        path = parts.path
        if path == "/ok":
            self._send(200, b"hello", Content_Type="text/plain")
        elif path == "/to":
            self._send(int(query.get("status", "302")), Location=query["url"])
        elif path == "/loop":
            self._send(302, Location="/loop")
        elif path == "/endless":
            self._drip("endless", b"x" * 65536, 0, 30)
        elif path == "/declared":
            self._drip("declared", b"x" * 65536, 0.01, 5, Content_Length=str(10**10))
        elif path == "/bomb":
            self._send(200, BOMB, Content_Encoding="gzip")
        elif path == "/trickle":
            self._drip("trickle", b"x", 0.1, 30)
        elif path == "/silent":
            time.sleep(5)
        else:
            self._send(404)

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _Server.posted.append((self.path, body))
        if self.path == "/moved":
            self._send(307, Location="/hook")
        else:
            self._send(204)


@pytest.fixture
def server(settings) -> Iterator[str]:
    """A loopback HTTP server, reachable because the operator's allow-list names 127.0.0.1."""
    settings.HONUA = {**settings.HONUA, "OUTBOUND_ALLOW_HOSTS": ["127.0.0.1"]}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    _Server.sent, _Server.posted = {}, []
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_fetch_reads_an_allowed_loopback_server(server):
    response = outbound_fetch(f"{server}/ok")
    assert (response.status, response.content, response.media_type) == (200, b"hello", "text/plain")
    assert outbound_fetch(f"{server}/missing").status == 404  # the caller decides what it means


def test_redirects_are_followed_and_every_hop_is_vetted(server, settings):
    response = outbound_fetch(f"{server}/to?url=/ok")
    assert response.content == b"hello" and response.url == f"{server}/ok"
    settings.HONUA = {**settings.HONUA, "OUTBOUND_ALLOW_PORTS": []}  # let the address decide
    port = urlsplit(server).port
    # The first hop is allowed; where it sends the request is vetted again and refused.
    for target, why in (
        ("http://169.254.169.254/latest/meta-data", "cloud metadata"),
        ("http://10.0.0.1/admin", "private"),
        (f"http://localhost:{port}/ok", "loopback"),
        (f"http://[::ffff:127.0.0.1]:{port}/ok", "IPv4-mapped"),
        ("file:///etc/passwd", "scheme"),
        (f"http://2130706433:{port}/ok", "non-standard notation"),
    ):
        with pytest.raises(OutboundRefused, match=why):
            outbound_fetch(f"{server}/to?status=301&url={quote(target, safe='')}")
    with pytest.raises(OutboundFailed, match="more than 3 redirects"):
        outbound_fetch(f"{server}/loop", max_redirects=3)


def test_the_size_limit_is_enforced_while_the_body_streams(server):
    started = time.monotonic()
    with pytest.raises(OutboundTooLarge, match="exceeds 1048576 bytes"):
        outbound_fetch(f"{server}/endless", max_bytes=1024 * 1024)  # the server never stops
    assert time.monotonic() - started < 10


def test_a_declared_length_over_the_limit_is_refused_before_reading(server):
    with pytest.raises(OutboundTooLarge, match="10000000000 bytes"):
        outbound_fetch(f"{server}/declared", max_bytes=1024 * 1024)


def test_a_compressed_body_is_limited_once_decoded(server):
    with pytest.raises(OutboundTooLarge, match="once decoded"):
        outbound_fetch(f"{server}/bomb", max_bytes=1024 * 1024)
    assert len(outbound_fetch(f"{server}/bomb", max_bytes=32 * 1024 * 1024).content) == 20 * 1024 * 1024


def test_a_server_that_never_answers_times_out(server, settings):
    settings.HONUA = {**settings.HONUA, "OUTBOUND_READ_TIMEOUT_SECONDS": 0.5}
    started = time.monotonic()
    with pytest.raises(OutboundTimeout):
        outbound_fetch(f"{server}/silent", timeout=3)
    assert time.monotonic() - started < 2.5


def test_the_overall_deadline_stops_a_trickling_server(server, settings):
    # Each byte arrives well within the read timeout: only the deadline ends the request.
    settings.HONUA = {**settings.HONUA, "OUTBOUND_READ_TIMEOUT_SECONDS": 2.0}
    started = time.monotonic()
    with pytest.raises(OutboundTimeout):
        outbound_fetch(f"{server}/trickle", timeout=1.5)
    assert time.monotonic() - started < 4
    assert 0 < _Server.sent["trickle"] < 100


def test_post_json_does_not_follow_redirects(server):
    assert outbound_post_json(f"{server}/hook", {"a": 1}) == 204
    assert outbound_post_json(f"{server}/moved", {"a": 2}) == 307
    assert _Server.posted == [("/hook", b'{"a":1}'), ("/moved", b'{"a":2}')]


@pytest.mark.django_db(transaction=True)
def test_callbacks_go_through_the_guard_with_the_tenant_allow_list(server, principal, honua_catalog, monkeypatch):
    from controlplane.services import notifications
    from controlplane.services.execution import run_submit
    from controlplane.tasks import run_execute

    monkeypatch.setattr(notifications, "_builders", dict(notifications._builders))
    notifications.payload_builder_register("ogc", lambda result, values, event: {"event": event})
    result = run_submit(
        ExecutionRequest(
            process_id="echo", inputs={"string_input": "cb"}, principal=principal, surface=Surface.OGC,
            mode=ExecutionMode.ASYNC, subscriber=Subscriber(success_uri=f"{server}/hook"),
        )
    )
    run_execute(str(result.run_id))
    _tenant_policy({"outbound_allow_hosts": ["hooks.example.org"]})
    refused = notifications.run_notify(run_id=str(result.run_id), event="success")
    assert len(refused) == 1 and not refused[0]["ok"]  # a refused URL is not retried
    assert "not on the tenant's list" in refused[0]["error"]
    assert _Server.posted == []
    _tenant_policy({"outbound_allow_hosts": ["127.0.0.1"]})
    delivered = notifications.run_notify(run_id=str(result.run_id), event="success")
    assert [a.get("status") for a in delivered] == [204]
    assert _Server.posted == [("/hook", orjson.dumps({"event": "success"}))]
    calls = ProcessRun.objects.get(id=result.run_id).callbacks
    assert [c.get("status") for c in calls if c["event"] == "success"][-2:] == [None, 204]


# --- one guard ---------------------------------------------------------------------------------

HTTP_CLIENTS = {"requests", "httpx", "urllib3", "urllib.request", "http.client", "aiohttp", "pycurl", "treq"}
GUARD = "controlplane/services/outbound.py"


def _client_imports(source: str) -> list[str]:
    """HTTP client modules a Python source imports (anywhere, top level or inside functions)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if any(name == m or name.startswith(m + ".") for m in HTTP_CLIENTS):
                found.append(name)
    return found


def test_the_import_scan_sees_every_form():
    assert _client_imports("import requests") == ["requests"]
    assert _client_imports("def f():\n    import httpx as h\n") == ["httpx"]
    assert _client_imports("from urllib import request") == ["urllib.request"]
    assert _client_imports("from urllib.request import urlopen") == ["urllib.request", "urllib.request.urlopen"]
    assert _client_imports("from http import client") == ["http.client"]
    assert _client_imports("from urllib.parse import urlsplit\nimport socket") == []


def test_no_outbound_http_client_outside_the_guard():
    offenders = {}
    for package in ("controlplane", "executors", "gpserver", "ogcprocesses", "honua"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel == GUARD or "/migrations/" in rel:
                continue
            found = _client_imports(path.read_text())
            if found:
                offenders[rel] = found
    assert offenders == {}, f"outbound HTTP must go through {GUARD} (the SSRF guard): {offenders}"
    assert _client_imports((ROOT / GUARD).read_text())  # the scan does see the guard's own


AWS = "controlplane/services/aws.py"
# The batch task's container side (no Django): its own S3 client for s3:// staging URIs.
AWS_TASK_SIDE = "executors/batch/s3io.py"


def test_aws_sdk_clients_are_made_only_in_the_aws_module():
    """boto3 reaches only the AWS endpoints the operator configured, never a client's URL: its
    clients come from one module (botocore's exceptions may be caught anywhere)."""
    offenders = {}
    for package in ("controlplane", "executors", "gpserver", "ogcprocesses", "honua", "browser"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in (AWS, AWS_TASK_SIDE):
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                names = [n for n in names if n.split(".")[0] in ("boto3", "botocore", "aiobotocore")]
                if any(n != "botocore.exceptions" for n in names):
                    offenders[rel] = names
    assert offenders == {}, f"AWS clients come from {AWS}: {offenders}"
    assert "boto3" in (ROOT / AWS).read_text()
