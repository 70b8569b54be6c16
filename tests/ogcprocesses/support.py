"""Helpers of the OGC API - Processes tests: a validating client, waiting, a stand-in tier."""

from __future__ import annotations

import email
import email.policy
import json
import re
import time
from collections.abc import Callable
from typing import Any

from django.test import Client

from controlplane.contracts import RunStatus
from executors.base import ExecutionContext, Executor
from executors.inprocess.echo import echo
from tests.ogcschema import assert_valid

API = "/ogcapi/"
EXC = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"
RAW = "raw"  # schema= marker: a raw output value, checked by the test itself


class EchoOnlyExecutor(Executor):
    """Stand-in inprocess tier serving only ``echo`` (while the real tier does not list it)."""

    tier = "inprocess"

    def supports(self, handler: str) -> bool:
        return handler == "echo"

    def execute(self, handler: str, inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
        return echo(inputs, ctx)


def schema_for(path: str) -> str | None:
    """The schema of a GET answer by path (results are raw or a document: the caller says)."""
    path = path.split("?")[0].strip("/")
    if path == "":
        return "landingPage.yaml"
    if path == "conformance":
        return "confClasses.yaml"
    if path == "processes":
        return "processList.yaml"
    if re.fullmatch(r"processes/[^/]+", path):
        return "process.yaml"
    if path == "jobs":
        return "jobList.yaml"
    if re.fullmatch(r"jobs/[^/]+", path):
        return "statusInfo.yaml"
    if path == "collections" or path.startswith(("collections/", "uploads")):
        return RAW  # OGC API - Features documents and uploads: checked in test_features.py
    return None


class OgcClient:
    """A Django test client speaking JSON to /ogcapi/ that validates every JSON answer."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def get(self, path: str, schema: str | None = None, accept: str = "application/json") -> Any:
        response = self.client.get(API + path.lstrip("/"), headers={"Accept": accept})
        return check(response, schema or schema_for(path))

    def delete(self, path: str) -> Any:
        return check(self.client.delete(API + path.lstrip("/")), "statusInfo.yaml")

    def execute(
        self, body: Any, process: str = "echo", prefer: str | None = None, schema: str | None = None,
        content_type: str = "application/json",
    ) -> Any:
        headers = {"Accept": "application/json"}
        if prefer:
            headers["Prefer"] = prefer
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        response = self.client.post(
            f"{API}processes/{process}/execution", data=data, content_type=content_type, headers=headers
        )
        if response.status_code == 201:
            schema = "statusInfo.yaml"
        elif response.status_code == 200 and body_is_document(body):
            schema = "results.yaml"
        return check(response, schema)


def body_is_document(body: Any) -> bool:
    return isinstance(body, dict) and body.get("response") == "document"


def check(response: Any, schema: str | None) -> Any:
    """Errors must be OGC exception documents; JSON answers must match ``schema``."""
    ctype = response.get("Content-Type", "")
    if response.status_code >= 400:
        assert ctype == "application/json", ctype
        doc = json.loads(response.content)
        assert_valid("exception.yaml", doc)
        assert doc["status"] == response.status_code
        assert doc["type"].startswith(EXC), doc["type"]
        return response
    is_json = ctype.split(";")[0].strip() == "application/json"
    if schema == RAW or not response.content:
        return response
    if is_json:
        assert schema is not None, f"no schema to validate this JSON answer against: {response.content[:200]!r}"
        assert_valid(schema, json.loads(response.content))
    elif schema is not None and "html" not in ctype:
        raise AssertionError(f"expected JSON ({schema}), got {ctype}")
    return response


def body(response: Any) -> Any:
    return json.loads(response.content)


def multipart(response: Any) -> dict[str, tuple[str, bytes, dict[str, str]]]:
    """Parts of a multipart/related answer by Content-ID: (content type, body, headers)."""
    ctype = response["Content-Type"]
    assert ctype.startswith("multipart/related"), ctype
    message = email.message_from_bytes(
        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + response.content, policy=email.policy.HTTP
    )
    parts = {}
    for part in message.iter_parts():
        cid = str(part["Content-ID"]).strip("<>")
        parts[cid] = (part.get_content_type(), part.get_payload(decode=True) or b"", dict(part.items()))
    return parts


def links_header(response: Any) -> list[dict[str, str]]:
    """The entries of the Link header: href and parameters."""
    out = []
    for item in re.findall(r"<([^>]*)>([^,]*)", response.get("Link", "")):
        href, params = item
        entry = {"href": href}
        for key, value in re.findall(r';\s*([a-zA-Z]+)="?([^";]*)"?', params):
            entry[key] = value
        out.append(entry)
    return out


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(step)


def run_status(job_id: str) -> RunStatus:
    from controlplane.models import ProcessRun

    return RunStatus(ProcessRun.objects.values_list("status", flat=True).get(id=job_id))


def job_id_of(response: Any) -> str:
    return str(response["Location"]).rstrip("/").rsplit("/", 1)[-1]
