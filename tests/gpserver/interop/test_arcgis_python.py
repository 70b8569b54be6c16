"""Interoperability: the ArcGIS API for Python (``arcgis``) against a live Honua GPServer.

The client is installed by `make test` (TEST_PIP_PACKAGES in the Makefile: ``arcgis`` without
its heavy optional dependencies). It is used as a GIS professional would, anonymously and
without a portal: ``arcgis.env.active_gis = None`` and ``import_toolbox(url)``; and with a token,
as the client authenticates against a stand-alone ArcGIS Server (``EsriGenTokenAuth``: the token
service found in ``rest/info``, the token sent as ``X-Esri-Authorization``). Every client
call runs under ``bounded()``: the client polls jobs with no timeout of its own, so a server
bug must fail the test, not hang CI.
"""

from __future__ import annotations

import inspect
import time
from typing import Any

import pytest
import requests

from tests.gpserver.interop.support import (
    RADIUS_M,
    bounded,
    check_buffer,
    missing_client,
    point_feature_set,
)
from tests.identity import PASSWORD, fast_passwords, member, rule  # noqa: F401  (fast_passwords: a fixture)

try:
    import arcgis
    from arcgis.features import FeatureSet
    from arcgis.geoprocessing import LinearUnit, import_toolbox
except ImportError as exc:  # pragma: no cover - depends on the test extras
    missing_client("arcgis (ArcGIS API for Python)", f"import failed: {exc}")

pytestmark = [pytest.mark.interop, pytest.mark.django_db(transaction=True)]

TERMINAL = {"esriJobSucceeded", "esriJobFailed", "esriJobCancelled", "esriJobTimedOut"}
MESSAGE_TYPES = {
    "esriJobMessageTypeInformative",
    "esriJobMessageTypeWarning",
    "esriJobMessageTypeError",
    "esriJobMessageTypeEmpty",
    "esriJobMessageTypeAbort",
}


@pytest.fixture(autouse=True)
def no_portal():
    """Anonymous use without a GIS: the client must not go looking for ArcGIS Online."""
    previous = arcgis.env.active_gis
    arcgis.env.active_gis = None
    yield
    arcgis.env.active_gis = previous


@pytest.fixture
def geometry_tools(gp_live):
    return bounded(60, import_toolbox, gp_live.geometry)


@pytest.fixture
def analysis_tools(gp_live):
    return bounded(60, import_toolbox, gp_live.analysis)


def _wait_status(job: Any, wanted: set[str], seconds: float) -> list[str]:
    """Poll ``job.status`` (GET jobs/<id>?returnMessages=True) until one of ``wanted``."""
    seen: list[str] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        status = bounded(15, lambda: job.status)
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in wanted:
            return seen
        time.sleep(0.2)
    pytest.fail(f"job never reached {sorted(wanted)} in {seconds:g} s; statuses seen: {seen}", pytrace=False)


def _check_messages(messages: Any) -> None:
    assert isinstance(messages, list) and messages, f"no job messages: {messages!r}"
    for m in messages:
        assert m.get("type") in MESSAGE_TYPES, f"message type {m.get('type')!r}"
        assert isinstance(m.get("description"), str)


# --- import_toolbox --------------------------------------------------------------------------


def test_import_toolbox_sync_service(geometry_tools):
    """26 tasks: the client fetches the task JSONs on 8 threads and generates a module."""
    assert callable(geometry_tools.buffer)
    params = inspect.signature(geometry_tools.buffer).parameters
    assert {"features", "distance", "gis", "future"} <= set(params)
    # The advertised default is baked into the signature (GPLinearUnit -> LinearUnit/dict).
    assert params["features"].default is not inspect.Parameter.empty


def test_import_toolbox_async_service(analysis_tools):
    assert callable(analysis_tools.buffer) and callable(analysis_tools.echo)
    params = inspect.signature(analysis_tools.echo).parameters
    assert {"string_input", "pause", "future"} <= set(params)


# --- buffer both ways ------------------------------------------------------------------------


def test_buffer_execute_sync_service(geometry_tools):
    """POST .../Geometry/GPServer/buffer/execute with a FeatureSet and a GPLinearUnit dict."""
    features = FeatureSet.from_dict(point_feature_set(4326))
    result = bounded(
        60, geometry_tools.buffer, features=features, distance={"distance": RADIUS_M, "units": "esriMeters"}
    )
    assert isinstance(result, FeatureSet), f"buffer returned {type(result)}: {result!r:.300}"
    attributes = check_buffer(result.to_dict())
    assert attributes.get("name") == "a", f"input attributes not carried over: {attributes}"


def test_buffer_execute_web_mercator(geometry_tools):
    """Input in Web Mercator ({"wkid":102100,"latestWkid":3857}): the distance still holds on
    the ground and the output comes back in Web Mercator."""
    features = FeatureSet.from_dict(point_feature_set(102100))
    result = bounded(
        60, geometry_tools.buffer, features=features, distance={"distance": RADIUS_M, "units": "esriMeters"}
    )
    out = result.to_dict()
    check_buffer(out)
    sr = out.get("spatialReference") or out["features"][0]["geometry"].get("spatialReference") or {}
    assert sr.get("latestWkid", sr.get("wkid")) in (102100, 3857), f"output spatial reference {sr}"


def test_buffer_env_out_sr(geometry_tools, monkeypatch):
    """arcgis.env.out_spatial_reference / process_spatial_reference go out as env:outSR and
    env:processSR (legacy, still what this client sends): the result comes back in 3857."""
    monkeypatch.setattr(arcgis.env, "out_spatial_reference", 3857)
    monkeypatch.setattr(arcgis.env, "process_spatial_reference", 4326)
    features = FeatureSet.from_dict(point_feature_set(4326))
    result = bounded(
        60, geometry_tools.buffer, features=features, distance={"distance": RADIUS_M, "units": "esriMeters"}
    )
    out = result.to_dict()
    sr = out.get("spatialReference") or {}
    assert sr.get("latestWkid", sr.get("wkid")) in (102100, 3857), f"output spatial reference {sr}"
    check_buffer(out)


def test_buffer_submit_job_async_service(analysis_tools):
    """submitJob, poll every second, GET results/result; LinearUnit sends "Esrimeters"."""
    features = FeatureSet.from_dict(point_feature_set(4326))
    unit = LinearUnit(RADIUS_M, "esriMeters")
    assert unit.to_dict()["units"] == "Esrimeters"  # the client's own spelling
    result = bounded(90, analysis_tools.buffer, features=features, distance=unit)
    assert isinstance(result, FeatureSet), f"buffer returned {type(result)}: {result!r:.300}"
    check_buffer(result.to_dict())


# --- future=True: status, messages, result, cancel -------------------------------------------


@pytest.fixture
def future_jobs() -> Any:
    """Jobs run with ``future=True`` end before their test does (cancelled if need be): the
    client's polling thread never stops on a job that has vanished (the tables are flushed
    after each test) and, a non-daemon thread on a kept-alive connection, would keep the test
    process from exiting."""
    jobs: list[Any] = []
    yield jobs
    for job in jobs:
        if not job.done():
            try:
                bounded(15, job.cancel)
            except Exception:  # noqa: BLE001 - best effort; the wait below decides
                pass
        end = time.monotonic() + 30
        while not job.done() and time.monotonic() < end:
            time.sleep(0.2)
        assert job.done(), "the client's job thread did not end"


def test_future_status_messages_and_result(analysis_tools, future_jobs):
    job = bounded(30, analysis_tools.echo, string_input="from arcgis", pause=1, future=True)
    future_jobs.append(job)
    seen = _wait_status(job, TERMINAL, 60)
    assert seen[-1] == "esriJobSucceeded", f"statuses: {seen}"
    _check_messages(bounded(15, lambda: job.messages))
    result = bounded(30, job.result)
    # echo has several outputs: the client answers a ToolOutput namedtuple in task order, the
    # string first.
    value = result[0] if isinstance(result, tuple) else result
    assert value == "from arcgis", f"result {result!r}"
    assert bounded(5, job.done)


def test_future_cancel_long_job(analysis_tools, future_jobs):
    started = time.monotonic()
    job = bounded(30, analysis_tools.echo, string_input="long", pause=45, future=True)
    future_jobs.append(job)
    seen = _wait_status(job, {"esriJobExecuting"} | TERMINAL, 30)
    assert seen[-1] == "esriJobExecuting", f"the job should be running; statuses: {seen}"
    _check_messages(bounded(15, lambda: job.messages))
    assert bounded(15, job.cancel) is True  # GET jobs/<id>/cancel
    seen = _wait_status(job, TERMINAL, 30)
    assert seen[-1] == "esriJobCancelled", f"statuses after cancel: {seen}"
    assert time.monotonic() - started < 40, "the job ran to its end instead of stopping"
    assert bounded(10, job.result) is None  # the client's answer for a cancelled job
    _check_messages(bounded(15, lambda: job.messages))


# --- errors surface as exceptions, not hangs -------------------------------------------------


def test_execute_invalid_parameter_raises(geometry_tools):
    """An invalid unit: HTTP 200 + {"error": ...}; the client raises "Tool execution failed"."""
    features = FeatureSet.from_dict(point_feature_set(4326))
    with pytest.raises(Exception) as info:
        bounded(60, geometry_tools.buffer, features=features, distance={"distance": 1, "units": "esriParsecs"})
    text = str(info.value)
    assert "RetryError" not in type(info.value).__name__, "the server answered a real 5xx (the client re-sent it)"
    assert "Tool execution failed" in text and "esriParsecs" in text, text


def test_submit_job_invalid_parameter_raises(analysis_tools):
    """submitJob answers the error envelope; the client raises (KeyError 'jobId'), no job."""
    features = FeatureSet.from_dict(point_feature_set(4326))
    with pytest.raises(Exception) as info:
        bounded(60, analysis_tools.buffer, features=features, distance={"distance": 1, "units": "esriParsecs"})
    assert "RetryError" not in type(info.value).__name__, "the server answered a real 5xx (the client re-sent it)"


def test_unset_inputs_as_the_client_encodes_them(gp_live):
    """What the generated echo sends, through the client's own
    encoding (``_execute_gp_tool``) with a parameter table built from the task JSON. Every
    unset input goes out as an empty string except a GPDataFile, which the client turns into
    ``DataFile.from_str("")`` -> ``binary_input={"url": ""}``; the server must take that as
    "not supplied", as it does the empty string."""
    from arcgis.auth import EsriSession
    from arcgis.geoprocessing._support import _execute_gp_tool
    from arcgis.geoprocessing._tool import _camelCase_to_underscore, get_py_param_type

    task = bounded(30, lambda: requests.post(gp_live.analysis + "/echo", data={"f": "json"}, timeout=20).json())
    assert "parameters" in task, task
    param_db: dict[str, Any] = {}
    return_values = []
    for p in task["parameters"]:
        name = _camelCase_to_underscore(p["name"])
        if p["direction"].endswith("Input"):
            param_db[name] = (get_py_param_type(p["dataType"]), p["name"])
        else:  # as the generated code does: outputs in param_db too, by name -> displayName
            param_db[name] = (get_py_param_type(p["dataType"]), p["displayName"])
            return_values.append({"name": name, "display_name": p["displayName"],
                                  "type": get_py_param_type(p["dataType"])})
    kwargs = {_camelCase_to_underscore(p["name"]): None for p in task["parameters"] if p["direction"].endswith("Input")}
    first_input = next(p["name"] for p in task["parameters"] if p["dataType"] == "GPString")
    kwargs.update({_camelCase_to_underscore(first_input): "encoded", "pause": 0.5})
    result = bounded(
        60, _execute_gp_tool, EsriSession(), "echo", kwargs, param_db, return_values, True, gp_live.analysis,
    )
    value = result[0] if isinstance(result, tuple) else result
    assert value == "encoded", f"result {result!r}"


# --- what the client's code generation needs of every task -----------------------------------


@pytest.mark.parametrize(
    "service",
    [
        "geometry",
        "analysis",
    ],
)
def test_every_task_survives_code_generation(gp_live, service):
    """import_toolbox writes one ``param_db`` dict literal per task with the inputs by name and
    then the outputs by name -> displayName: an output named like an input overwrites it, and
    the client then sends the output's displayName instead of the input (e.g. echo:
    ``String+output=x`` for string_input). Names must also be distinct identifiers."""
    url = getattr(gp_live, service)
    session = requests.Session()
    service_json = bounded(30, lambda: session.get(url, params={"f": "json"}, timeout=20).json())
    assert "tasks" in service_json, service_json
    problems = []
    for task in service_json["tasks"]:
        task_json = bounded(30, lambda t=task: session.post(f"{url}/{t}", data={"f": "json"}, timeout=20).json())
        inputs = [p["name"] for p in task_json["parameters"] if p["direction"].endswith("Input")]
        outputs = [p["name"] for p in task_json["parameters"] if p["direction"].endswith("Output")]
        clash = sorted(set(inputs) & set(outputs))
        if clash:
            problems.append(f"{task}: outputs named like inputs {clash}")
        bad = [n for n in inputs + outputs if not n.isidentifier()]
        if bad:
            problems.append(f"{task}: names that are not identifiers {bad}")
    assert not problems, "; ".join(problems)


# --- authentication: tokens from tokens/generateToken ----------------------------------------


def _token_session(server: str, username: str) -> Any:
    """How the client authenticates against a stand-alone ArcGIS Server (no portal): an
    ``EsriSession`` whose ``EsriGenTokenAuth`` finds the token service in ``rest/info``
    (``authInfo.tokenServicesUrl``), POSTs username/password/referer there and sends the token
    as ``X-Esri-Authorization: Bearer`` with its referer on every request."""
    from arcgis.auth import EsriGenTokenAuth, EsriSession

    session = EsriSession(referer="http")
    session.auth = EsriGenTokenAuth(
        token_url=server + "/arcgis", referer="http", username=username, password=PASSWORD, session=session
    )
    return session


@pytest.mark.usefixtures("fast_passwords")
def test_token_required_then_an_authenticated_run(gp_live, live_server):
    """The demo tenant closed to anonymous callers: without a token the services answer Esri's
    499; with the client's own token handshake, import_toolbox and both execution types run as
    the member (the ledger records who)."""
    from controlplane.models import AuditEvent, ProcessRun

    rule("demo", "*", "anonymous", False)
    member("demo", "gis-analyst")
    anonymous = bounded(30, lambda: requests.get(gp_live.geometry, params={"f": "json"}, timeout=20).json())
    assert anonymous["error"]["code"] == 499 and anonymous["error"]["message"] == "Token Required"
    session = _token_session(live_server.url, "gis-analyst")
    geometry = bounded(60, import_toolbox, gp_live.geometry, gis=session)
    features = FeatureSet.from_dict(point_feature_set(4326))
    distance = {"distance": RADIUS_M, "units": "esriMeters"}
    check_buffer(bounded(60, geometry.buffer, features=features, distance=distance, gis=session).to_dict())
    analysis = bounded(60, import_toolbox, gp_live.analysis, gis=session)
    unit = LinearUnit(RADIUS_M, "esriMeters")
    check_buffer(bounded(90, analysis.buffer, features=features, distance=unit, gis=session).to_dict())
    runs = ProcessRun.objects.filter(process_id="buffer")
    assert sorted(r.mode for r in runs) == ["async", "sync"]
    assert {(r.tenant.slug, r.principal) for r in runs} == {("demo", "gis-analyst")}
    assert AuditEvent.objects.filter(action="token.issue", actor="gis-analyst").exists()


@pytest.mark.usefixtures("fast_passwords")
def test_a_wrong_password_raises_and_reaches_nothing(gp_live, live_server):
    """The client's handshake raises with Esri's "Unable to generate token." (import_toolbox
    itself would not say so: it calls itself again on any error but "token required")."""
    from controlplane.models import ProcessRun

    rule("demo", "*", "anonymous", False)
    member("demo", "gis-analyst", password="something else")
    session = _token_session(live_server.url, "gis-analyst")
    with pytest.raises(Exception, match="Unable to generate token"):
        bounded(30, session.auth.token)
    with pytest.raises(Exception, match="Invalid username or password"):
        bounded(30, session.get, gp_live.geometry, params={"f": "json"})
    assert not ProcessRun.objects.exists()
