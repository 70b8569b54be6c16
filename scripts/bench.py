"""`make bench`: start Honua as `make run` does, drive it over HTTP on loopback, print JSON.

Workloads (OGC API - Processes surface):
  sync_buffer_1_c1 / _c8     POST /processes/buffer/execution, one point, concurrency 1 and 8
  gpserver_execute_buffer_1_c1  GPServer execute of the same buffer (Esri FeatureSet form), c1
  sync_buffer_10k_c1         the same with 10,000 points, concurrency 1
  async_jobs_200             200 jobs (Prefer: respond-async) at concurrency 8, polled to the end
  job_list                   GET /jobs?limit=10 with >= 10,000 runs in the ledger
  layer_dbscan_100k_*        DBSCAN over a 100,000-point hosted layer (layerReference): postgis
                             tier vs the same layer in a tenant that pins the in-process tier
  layer_buffer_100k_postgis  a layer-referenced buffer of the 100,000 points (postgis tier)

It uses its own database (``honua_bench`` on the local cluster, or BENCH_DATABASE_URL) and
port (BENCH_PORT, default 8099), so the benchmark neither reads nor pollutes your data.
Latency for the fixed-load runs comes from wrk (installed from Debian if missing), which
keeps the load generator's own CPU use small on a 2-core machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def bench_env(port: int) -> dict[str, str]:
    pg_port = os.environ.get("HONUA_PG_PORT", "54329")
    url = os.environ.get("BENCH_DATABASE_URL") or f"postgis://honua:honua@127.0.0.1:{pg_port}/honua_bench"
    return {
        **os.environ,
        "DATABASE_URL": url,
        "HONUA_HOST": "127.0.0.1",
        "HONUA_PORT": str(port),
        "HONUA_LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "honua.settings",
    }


def ensure_database(env: dict[str, str]) -> None:
    if os.environ.get("BENCH_DATABASE_URL"):
        return
    import psycopg

    pg_port = os.environ.get("HONUA_PG_PORT", "54329")
    with psycopg.connect(f"postgresql://honua:honua@127.0.0.1:{pg_port}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'honua_bench'").fetchone():
            log("creating database honua_bench")
            conn.execute("CREATE DATABASE honua_bench TEMPLATE template1")
    for cmd in (["migrate", "--noinput"], ["sync_catalog"], ["ensure_demo"]):
        subprocess.run([PY, "manage.py", *cmd], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def seed_ledger(env: dict[str, str], minimum: int) -> int:
    """Make sure the ledger holds at least ``minimum`` finished runs (bulk-inserted)."""
    code = f"""
import django, uuid, random
django.setup()
from datetime import timedelta
from django.utils import timezone
from controlplane.models import ProcessRun, ProcessDefinition, Tenant
from django.conf import settings
tenant = Tenant.objects.get(slug=settings.HONUA["DEFAULT_TENANT"])
have = ProcessRun.objects.filter(tenant=tenant).count()
need = {minimum} - have
defn = ProcessDefinition.objects.get(process_id="buffer", is_current=True)
now = timezone.now()
rows = []
for i in range(max(0, need)):
    created = now - timedelta(seconds=i * 7)
    status = random.choice(["succeeded"] * 8 + ["failed"])
    rows.append(ProcessRun(
        tenant=tenant, principal="bench", surface=random.choice(["ogc", "gpserver"]),
        process_id="buffer", process_version=defn.version, definition=defn,
        definition_revision=defn.revision, mode="async", status=status,
        resource_class="cpu_burst", tier_order=["inprocess"], tier_used="inprocess",
        inputs={{"features": {{"type": "FeatureCollection", "features": []}}}}, input_hash="0" * 64,
        started_at=created, finished_at=created + timedelta(milliseconds=40), progress=100,
        outputs={{"result": {{"type": "FeatureCollection", "features": []}}}} if status == "succeeded" else None,
        error=None if status == "succeeded" else {{"code": "x", "message": "seeded failure", "details": []}},
        messages=[{{"type": "info", "text": "Seeded.", "time": created.isoformat()}}],
    ))
ProcessRun.objects.bulk_create(rows, batch_size=2000)
if rows:
    from django.db.models import F
    ProcessRun.objects.filter(principal="bench").update(created_at=F("started_at"), updated_at=F("finished_at"))
print(ProcessRun.objects.filter(tenant=tenant).count())
"""
    out = subprocess.run([PY, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1])


LAYER_POINTS = 100_000


def seed_layers(env: dict[str, str]) -> dict[str, str]:
    """Two tenants holding the same seeded 100,000-point hosted layer ``bench_points``:
    ``bench-pg`` (catalog tier order: postgis first) and ``bench-inproc`` (dbscan pinned to the
    in-process tier, as an operator's override). Returns tenant -> API key (new each run)."""
    code = f"""
import django, json, random
django.setup()
from django.contrib.auth import get_user_model
from controlplane.models import Membership, Tenant, TenantPolicyOverride
from controlplane.services.auth import api_key_create
from controlplane.services.layers import layer_publish
from controlplane.selectors import layers_for_principal
from controlplane.contracts import Principal
keys = {{}}
user = get_user_model().objects.filter(username="bench").first() or get_user_model().objects.create_user("bench")
for slug in ("bench-pg", "bench-inproc"):
    tenant, _ = Tenant.objects.get_or_create(slug=slug, defaults={{"name": slug}})
    Membership.objects.get_or_create(user=user, tenant=tenant, defaults={{"role": "editor"}})
    if slug == "bench-inproc":
        TenantPolicyOverride.objects.update_or_create(
            tenant=tenant, process_id="dbscan", defaults={{"tier_order": ["inprocess"]}})
    me = Principal(tenant=slug, user_id=user.id, username="bench", roles=("editor",))
    if not any(l.id == "bench_points" for l in layers_for_principal(principal=me)):
        rnd = random.Random(11)
        feats = []
        for i in range({LAYER_POINTS}):
            # Clustered: 200 centres with points within ~500 m, plus uniform noise.
            if i % 10 == 0:
                x, y = rnd.uniform(-122.6, -122.2), rnd.uniform(37.6, 37.9)
            else:
                c = (i // 10) % 200
                cx, cy = -122.6 + (c % 20) * 0.02, 37.6 + (c // 20) * 0.03
                x, y = cx + rnd.gauss(0, 0.002), cy + rnd.gauss(0, 0.002)
            feats.append({{"type": "Feature", "geometry": {{"type": "Point", "coordinates": [x, y]}},
                          "properties": {{"n": i}}}})
        layer_publish(tenant_id=tenant.id, collection_id="bench_points", title="bench points",
                      features={{"type": "FeatureCollection", "srid": 4326, "features": feats}})
    keys[slug] = api_key_create(tenant_id=tenant.id, user_id=user.id, name="bench")[1]
print(json.dumps(keys))
"""
    out = subprocess.run([PY, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def layer_runs(port: int, process: str, body: dict[str, Any], key: str, count: int) -> dict[str, Any]:
    """``count`` sync OGC executes (one warm-up first): p50 and each wall time."""
    path = f"/ogcapi/processes/{process}/execution"
    payload = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "X-API-Key": key}
    times: list[float] = []
    for i in range(count + 1):
        t0 = time.perf_counter()
        status, _, data = request("POST", port, path, payload, headers)
        elapsed = (time.perf_counter() - t0) * 1000
        if status not in (200, 204):
            raise SystemExit(f"{process} over a layer answered {status}: {data[:300]!r}")
        if i:
            times.append(elapsed)
    return {"runs": count, "p50_ms": round(statistics.median(times), 1), "all_ms": [round(t, 1) for t in times]}


def layer_stages(port: int, env: dict[str, str], results: dict[str, Any], only: set[str]) -> None:
    keys = seed_layers(env)
    ref = {"layerReference": {"collectionId": "bench_points"}}
    by_ref = {"result": {"transmissionMode": "reference"}}
    if not only or "layerdbscan" in only:
        body = {"inputs": {"features": ref, "eps": {"value": 300, "unit": "meter"}, "min_points": 5},
                "outputs": by_ref, "response": "document"}
        log("DBSCAN over a 100,000-point layer, postgis tier")
        results["layer_dbscan_100k_postgis"] = layer_runs(port, "dbscan", body, keys["bench-pg"], 3)
        log("DBSCAN over the same layer, in-process tier (tenant override)")
        results["layer_dbscan_100k_inprocess"] = layer_runs(port, "dbscan", body, keys["bench-inproc"], 3)
        results["layer_dbscan_inprocess_over_postgis_p50"] = round(
            results["layer_dbscan_100k_inprocess"]["p50_ms"] / results["layer_dbscan_100k_postgis"]["p50_ms"], 3
        )
    if not only or "layerbuffer" in only:
        body = {"inputs": {"features": ref, "distance": {"value": 50, "unit": "meter"}},
                "outputs": by_ref, "response": "document"}
        log("buffer of a 100,000-point layer, postgis tier")
        results["layer_buffer_100k_postgis"] = layer_runs(port, "buffer", body, keys["bench-pg"], 3)
    results["layer_tiers"] = tiers_used(env)


def tiers_used(env: dict[str, str]) -> dict[str, Any]:
    """Tier used by the bench tenants' runs, per tenant and process (from the ledger)."""
    code = """
import django, json
django.setup()
from django.db.models import Count
from controlplane.models import ProcessRun
rows = ProcessRun.objects.filter(tenant__slug__in=["bench-pg", "bench-inproc"]).values(
    "tenant__slug", "process_id", "tier_used", "status").annotate(n=Count("id"))
print(json.dumps([dict(r) for r in rows]))
"""
    out = subprocess.run([PY, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


class Server:
    def __init__(self, env: dict[str, str], port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            [PY, str(ROOT / "scripts" / "serve.py")],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                status, _, _ = request("GET", port, "/healthz")
                if status == 200:
                    return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise SystemExit("Honua did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


_local = threading.local()


def request(method: str, port: int, path: str, body: bytes | None = None, headers: dict | None = None):
    """One request on this thread's keep-alive connection; a connection the server closed
    while idle is replaced once."""
    for attempt in (1, 2):
        conn = getattr(_local, "conn", None)
        reused = conn is not None
        if conn is None:
            conn = _local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
        except (http.client.HTTPException, OSError):
            conn.close()
            _local.conn = None
            if reused and attempt == 1:
                continue
            raise
        if resp.getheader("Connection", "").lower() == "close":
            conn.close()
            _local.conn = None
        return resp.status, dict(resp.getheaders()), data
    raise RuntimeError("unreachable")


def points_body(n: int, seed: int = 7) -> bytes:
    rnd = random.Random(seed)
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [rnd.uniform(-10, 10), rnd.uniform(40, 50)]},
            "properties": {"i": i},
        }
        for i in range(n)
    ]
    body = {
        "inputs": {
            "features": {"value": {"type": "FeatureCollection", "features": features}, "mediaType": "application/geo+json"},
            "distance": {"value": 100, "unit": "meter"},
        },
        "response": "document",
    }
    return json.dumps(body).encode()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summary(latencies_ms: list[float], elapsed: float, errors: int) -> dict[str, Any]:
    return {
        "requests": len(latencies_ms),
        "errors": errors,
        "p50_ms": round(statistics.median(latencies_ms), 3),
        "p95_ms": round(pct(latencies_ms, 95), 3),
        "throughput_rps": round(len(latencies_ms) / elapsed, 1),
    }


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open(os.getenv("BENCH_BODY")):read("*a")
function done(summary, latency, requests)
  io.stderr:write(string.format('{"requests": %d, "errors": %d, "p50_ms": %.3f, "p95_ms": %.3f, "throughput_rps": %.1f}\\n',
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, summary.requests / (summary.duration / 1e6)))
end
"""


def ensure_wrk() -> str | None:
    if shutil.which("wrk"):
        return shutil.which("wrk")
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("installing wrk from Debian")
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, stdout=subprocess.DEVNULL)
    return shutil.which("wrk")


def load_wrk(port: int, path: str, body: bytes, concurrency: int, seconds: int) -> dict[str, Any]:
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(WRK_SCRIPT)
        payload = Path(tmp) / "body.json"
        payload.write_bytes(body)
        if wrk is None:
            return load_python(port, path, body, concurrency, seconds)
        out = subprocess.run(
            [wrk, "-t", str(min(concurrency, 2)), "-c", str(concurrency), "-d", f"{seconds}s", "-s", str(script),
             f"http://127.0.0.1:{port}{path}"],
            env={**os.environ, "BENCH_BODY": str(payload)},
            capture_output=True,
            text=True,
            check=True,
        )
    line = [ln for ln in out.stderr.splitlines() if ln.startswith("{")][-1]
    return json.loads(line)


def load_python(port: int, path: str, body: bytes, concurrency: int, seconds: float, count: int | None = None):
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    remaining = [count] if count is not None else None

    def worker() -> None:
        nonlocal errors
        while time.monotonic() < stop_at:
            if remaining is not None:
                with lock:
                    if remaining[0] <= 0:
                        return
                    remaining[0] -= 1
            t0 = time.perf_counter()
            try:
                status, _, _ = request("POST", port, path, body, {"Content-Type": "application/json"})
            except OSError:
                status = 0
            dt = (time.perf_counter() - t0) * 1000
            with lock:
                latencies.append(dt)
                if status != 200:
                    errors += 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return summary(latencies, time.monotonic() - t0, errors)


def async_jobs(port: int, n: int, concurrency: int) -> dict[str, Any]:
    body = points_body(1, seed=11)
    job_urls: list[str] = []
    submit_ms: list[float] = []
    errors = 0
    lock = threading.Lock()
    todo = list(range(n))

    def submitter() -> None:
        nonlocal errors
        while True:
            with lock:
                if not todo:
                    return
                todo.pop()
            t0 = time.perf_counter()
            status, headers, _ = request(
                "POST", port, "/ogcapi/processes/buffer/execution", body,
                {"Content-Type": "application/json", "Prefer": "respond-async"},
            )
            with lock:
                submit_ms.append((time.perf_counter() - t0) * 1000)
                if status == 201:
                    job_urls.append(headers.get("Location") or headers.get("location"))
                else:
                    errors += 1

    t0 = time.monotonic()
    t0_wall = time.time()
    threads = [threading.Thread(target=submitter) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    submitted = time.monotonic()
    # Jobs finish roughly in submission order: each sweep polls the oldest pending jobs and
    # stops at the first one still running, so polling does not starve the workers. The end
    # is the latest ``finished`` timestamp the server recorded.
    pending = [u.split("/jobs/")[-1] for u in job_urls]
    finished: list[float] = []
    failed = 0
    while pending and time.monotonic() - t0 < 300:
        while pending:
            status, _, data = request("GET", port, f"/ogcapi/jobs/{pending[0]}")
            doc = json.loads(data)
            if doc.get("status") not in ("successful", "failed", "dismissed"):
                break
            pending.pop(0)
            failed += doc["status"] != "successful"
            finished.append(datetime.fromisoformat(doc["finished"]).timestamp())
        if pending:
            time.sleep(0.05)
    elapsed = (max(finished) - t0_wall) if finished else time.monotonic() - t0
    return {
        "jobs": n,
        "accepted": len(job_urls),
        "succeeded": len(finished) - failed,
        "failed_or_lost": failed + len(pending) + errors,
        "submit_p50_ms": round(statistics.median(submit_ms), 3),
        "submit_p95_ms": round(pct(submit_ms, 95), 3),
        "submit_seconds": round(submitted - t0, 3),
        "end_to_end_seconds": round(elapsed, 3),
        "throughput_jobs_per_s": round(len(finished) / elapsed, 1) if elapsed else None,
    }


def job_list(port: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        s = time.perf_counter()
        status, _, data = request("GET", port, "/ogcapi/jobs?limit=10")
        latencies.append((time.perf_counter() - s) * 1000)
        errors += status != 200 or len(json.loads(data)["jobs"]) != 10
    return summary(latencies, time.monotonic() - t0, errors)


GP_EXECUTE = "/arcgis/rest/services/Honua/Geometry/GPServer/buffer/execute"

WRK_FORM_SCRIPT = WRK_SCRIPT.replace('"application/json"', '"application/x-www-form-urlencoded"')


def gpserver_body(n: int, seed: int = 7) -> bytes:
    """The GPServer execute form of ``points_body``: the same points as an Esri FeatureSet,
    as arcgis-python sends it (form-encoded, FeatureSet and linear unit as JSON text)."""
    from urllib.parse import urlencode

    rnd = random.Random(seed)
    features = [
        {"geometry": {"x": rnd.uniform(-10, 10), "y": rnd.uniform(40, 50), "spatialReference": {"wkid": 4326}},
         "attributes": {"OBJECTID": i + 1, "i": i}}
        for i in range(n)
    ]
    featureset = {
        "geometryType": "esriGeometryPoint", "spatialReference": {"wkid": 4326}, "objectIdFieldName": "OBJECTID",
        "fields": [{"name": "OBJECTID", "type": "esriFieldTypeOID", "alias": "OBJECTID"},
                   {"name": "i", "type": "esriFieldTypeInteger", "alias": "i"}],
        "features": features,
    }
    return urlencode({
        "f": "json",
        "features": json.dumps(featureset),
        "distance": json.dumps({"distance": 100, "units": "esriMeters"}),
        "method": "", "dissolve": "", "quad_segs": "", "cap_style": "", "join_style": "",
    }).encode()


def gpserver_execute(port: int, seconds: int) -> dict[str, Any]:
    """GPServer execute of a 1-feature buffer at concurrency 1 (wrk, form-encoded body), after
    checking that the answer is a buffer and not an error envelope (answered with HTTP 200)."""
    body = gpserver_body(1)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    for _ in range(4):  # warm up; each answer must hold a polygon
        status, _, data = request("POST", port, GP_EXECUTE, body, headers)
        doc = json.loads(data)
        if status != 200 or "results" not in doc:
            raise SystemExit(f"GPServer execute failed: {status} {data[:300]!r}")
        assert doc["results"][0]["value"]["geometryType"] == "esriGeometryPolygon"
    wrk = ensure_wrk()
    if wrk is None:
        latencies: list[float] = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            s = time.perf_counter()
            request("POST", port, GP_EXECUTE, body, headers)
            latencies.append((time.perf_counter() - s) * 1000)
        return summary(latencies, time.monotonic() - t0, 0)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(WRK_FORM_SCRIPT)
        payload = Path(tmp) / "body.form"
        payload.write_bytes(body)
        out = subprocess.run(
            [wrk, "-t", "1", "-c", "1", "-d", f"{seconds}s", "-s", str(script), f"http://127.0.0.1:{port}{GP_EXECUTE}"],
            env={**os.environ, "BENCH_BODY": str(payload)}, capture_output=True, text=True, check=True,
        )
    line = [ln for ln in out.stderr.splitlines() if ln.startswith("{")][-1]
    return json.loads(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", "10")))
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", "8099")))
    parser.add_argument(
        "--only", default="", help="comma-separated subset: sync1,gpserver,sync10k,async,joblist,layerdbscan,layerbuffer "
        "(default: all)"
    )
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))

    def want(name: str) -> bool:
        return not only or name in only


    env = bench_env(args.port)
    ensure_database(env)
    ledger = seed_ledger(env, 10_000)
    log(f"ledger holds {ledger} runs")
    server = Server(env, args.port)
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "ledger_runs": ledger}
    try:
        path = "/ogcapi/processes/buffer/execution"
        one = points_body(1)
        load_python(args.port, path, one, 2, 2)  # warm up every worker
        if want("sync1"):
            log("sync buffer, 1 feature, concurrency 1")
            results["sync_buffer_1_c1"] = load_wrk(args.port, path, one, 1, args.seconds)
            log("sync buffer, 1 feature, concurrency 8")
            results["sync_buffer_1_c8"] = load_wrk(args.port, path, one, 8, args.seconds)
        if want("gpserver"):
            log("GPServer execute, buffer of 1 feature (FeatureSet), concurrency 1")
            results["gpserver_execute_buffer_1_c1"] = gpserver_execute(args.port, args.seconds)
        if "gpserver_execute_buffer_1_c1" in results and "sync_buffer_1_c1" in results:
            # Compare within one run (the machine is shared and noisy): GPServer over OGC, p50.
            results["gpserver_over_ogc_p50"] = round(
                results["gpserver_execute_buffer_1_c1"]["p50_ms"] / results["sync_buffer_1_c1"]["p50_ms"], 3
            )
        if want("sync10k"):
            log("sync buffer, 10,000 points, concurrency 1")
            ten_k = points_body(10_000)
            load_python(args.port, path, ten_k, 1, 60, count=2)
            results["sync_buffer_10k_c1"] = load_python(
                args.port, path, ten_k, 1, max(args.seconds, 10), count=30
            )
        if want("async"):
            log("200 async jobs")
            results["async_jobs_200"] = async_jobs(args.port, 200, 8)
        if want("joblist"):
            log("job list")
            results["job_list"] = job_list(args.port, args.seconds)
        if want("layerdbscan") or want("layerbuffer"):
            layer_stages(args.port, env, results, only & {"layerdbscan", "layerbuffer"})
        results["ledger_runs_after"] = seed_ledger(env, 0)
    finally:
        server.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
