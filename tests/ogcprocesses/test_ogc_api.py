"""Landing page, conformance, API definition, process list and descriptions, HTML, errors."""

from __future__ import annotations

import json

import pytest
from django.urls import get_resolver

from ogcprocesses import translate
from ogcprocesses.openapi import OPERATIONS
from tests.ogcprocesses.support import API, EXC, body, check, links_header, schema_for
from tests.ogcschema import assert_valid
from tests.ogcschema import errors as schema_errors

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ogc")]

REL = translate.REL


def test_landing_page_links(api):
    response = api.get("")
    doc = body(response)
    rels = {link["rel"]: link for link in doc["links"]}
    assert rels["service-desc"]["href"] == "http://testserver/ogcapi/api"
    assert rels["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    assert rels["service-doc"]["type"] == "text/html"
    assert rels[REL + "conformance"]["href"] == "http://testserver/ogcapi/conformance"
    assert rels[REL + "processes"]["href"] == "http://testserver/ogcapi/processes"
    assert rels[REL + "job-list"]["href"] == "http://testserver/ogcapi/jobs"
    assert rels["self"]["type"] == "application/json" and rels["alternate"]["type"] == "text/html"
    # The Link header mirrors the payload links; Location is exposed to browsers.
    assert {x["href"] for x in links_header(response)} >= {rels["service-desc"]["href"]}
    assert "Location" in response["Access-Control-Expose-Headers"]


def test_every_landing_link_answers(api, client):
    for link in body(api.get(""))["links"]:
        response = client.get(link["href"], headers={"Accept": link["type"]})
        assert response.status_code == 200, link
        assert response["Content-Type"].split(";")[0] == link["type"].split(";")[0], link
        path = link["href"].removeprefix("http://testserver" + API)
        if response["Content-Type"] == "application/json":
            check(response, schema_for(path))


def test_conformance_lists_the_implemented_classes(api):
    doc = body(api.get("conformance"))
    base = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/"
    features = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/"
    assert set(doc["conformsTo"]) == {
        base + c for c in
        ("core", "ogc-process-description", "json", "html", "oas30", "job-list", "callback", "dismiss")
    } | {features + c for c in ("core", "oas30", "geojson")}


def test_api_definition_is_valid_openapi_describing_every_operation(api, client):
    import openapi_spec_validator as validator
    response = client.get(API + "api")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.oai.openapi+json;version=3.0"
    doc = response.json()
    validator.validate(doc)
    assert doc["openapi"].startswith("3.0")
    for op in OPERATIONS:
        operation = doc["paths"][op.path][op.method]
        assert operation["operationId"] == op.operation_id
        codes = set(operation["responses"])
        assert "500" in codes and any(c.startswith("4") for c in codes), op
    # One generated execute operation per process, typed by the catalog.
    echo = doc["paths"]["/processes/echo/execution"]["post"]
    inputs = echo["requestBody"]["content"]["application/json"]["schema"]["properties"]["inputs"]
    assert inputs["required"] == ["string_input"]
    assert set(inputs["properties"]) == {
        "string_input", "double_input", "array_input", "bbox_input", "object_input", "binary_input", "pause",
    }
    assert {"200", "201", "204", "400", "404", "413", "429", "500"} <= set(echo["responses"])
    assert set(doc["paths"]["/processes/{processID}/execution"]["post"]["callbacks"]) == {
        "jobSucceeded", "jobFailed", "jobInProgress",
    }
    # Every URL pattern of the surface is described.
    resolver = get_resolver().url_patterns
    ogc = next(p for p in resolver if str(p.pattern) == "ogcapi/")
    described = {path.replace("{processID}", "<str:process_id>").replace("{jobId}", "<str:job_id>")
                 .replace("{collectionId}", "<str:collection_id>").replace("{featureId}", "<str:feature_id>")
                 .replace("{uploadId}", "<str:upload_id>")
                 for path in doc["paths"]}
    for pattern in ogc.url_patterns:
        route = "/" + str(pattern.pattern).lstrip("^")
        if pattern.name != "not-found":
            assert route in described or route.rstrip("/") + "/" in described, route
    # Same document as JSON when JSON is asked for; and a human page.
    assert client.get(API + "api", headers={"Accept": "application/json"})["Content-Type"] == "application/json"
    html = client.get(API + "api?f=html")
    assert html.status_code == 200 and html["Content-Type"].startswith("text/html")
    assert b"/processes/{processID}/execution" in html.content


def test_process_list(api):
    doc = body(api.get("processes"))
    ids = [p["id"] for p in doc["processes"]]
    assert "echo" in [p["id"] for p in body(api.get("processes?limit=10000"))["processes"]]
    assert 1 <= len(ids) <= 10
    for summary in doc["processes"]:
        self_link = next(link for link in summary["links"] if link["rel"] == "self")
        assert self_link["href"] == f"http://testserver/ogcapi/processes/{summary['id']}"
    rels = {link["rel"] for link in doc["links"]}
    assert {"self", "alternate"} <= rels


def test_process_list_limit_and_paging(api, client):
    one = body(api.get("processes?limit=1"))
    assert len(one["processes"]) == 1
    total = len(body(api.get("processes?limit=10000"))["processes"])
    if total > 1:
        nxt = next(link["href"] for link in one["links"] if link["rel"] == "next")
        second = check(client.get(nxt, headers={"Accept": "application/json"}), "processList.yaml").json()
        assert len(second["processes"]) == 1 and second["processes"][0]["id"] != one["processes"][0]["id"]
        prev = next(link["href"] for link in second["links"] if link["rel"] == "prev")
        back = check(client.get(prev, headers={"Accept": "application/json"}), "processList.yaml").json()
        assert back["processes"][0]["id"] == one["processes"][0]["id"]
    for bad in ("0", "10001", "ten"):
        response = api.get(f"processes?limit={bad}")
        assert response.status_code == 400
        assert body(response)["type"] == EXC + "invalid-parameter-value"


def test_echo_description(api):
    doc = body(api.get("processes/echo"))
    assert doc["id"] == "echo" and doc["version"] == "1.0.0"
    assert set(doc["jobControlOptions"]) == {"sync-execute", "async-execute", "dismiss"}
    assert list(doc["inputs"])[0] == "string_input"  # the ETS uses the first input
    assert set(doc["inputs"]) - {"pause"} == set(doc["outputs"])  # inputs echo to same-id outputs
    for section in ("inputs", "outputs"):
        for item in doc[section].values():
            assert schema_errors("schema.yaml", item["schema"]) == []
    inputs = doc["inputs"]
    assert inputs["string_input"]["schema"] == {"type": "string"} and inputs["string_input"]["minOccurs"] == 1
    assert inputs["array_input"]["schema"]["type"] == "array"
    assert inputs["array_input"]["schema"]["items"] == {"type": "integer"}
    assert inputs["bbox_input"]["schema"]["allOf"][0] == {"format": "ogc-bbox"}
    assert inputs["object_input"]["schema"] == {"type": "object"}
    assert inputs["binary_input"]["schema"]["contentMediaType"] == "application/octet-stream"
    assert inputs["binary_input"]["schema"]["contentEncoding"] == "base64"
    assert inputs["pause"]["schema"] == {"type": "number", "minimum": 0, "maximum": 60}
    assert all(inputs[n]["minOccurs"] == 0 for n in inputs if n != "string_input")
    execute = next(link for link in doc["links"] if link["rel"] == REL + "execute")
    assert execute["href"] == "http://testserver/ogcapi/processes/echo/execution"


def test_unknown_process_is_404_no_such_process(api, client):
    for response in (
        api.get("processes/no-such-thing"),
        check(client.post(API + "processes/no-such-thing/execution", data="{}", content_type="application/json"),
              None),
    ):
        assert response.status_code == 404
        doc = body(response)
        assert doc["type"] == EXC + "no-such-process"
        assert doc["instance"].startswith("http://testserver/ogcapi/processes/no-such-thing")


@pytest.mark.parametrize(
    ("path", "marker"),
    [
        ("", "Honua"),
        ("conformance", "conf/core"),
        ("processes?limit=10000", "echo"),
        ("processes/echo", "string_input"),
        ("jobs", "Jobs"),
    ],
)
def test_html_pages(client, path, marker):
    for response in (
        client.get(API + path + ("&" if "?" in path else "?") + "f=html"),
        client.get(API + path, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}),
    ):
        assert response.status_code == 200
        assert response["Content-Type"] == "text/html; charset=utf-8"
        text = response.content.decode()
        assert marker in text and "<a href=" in text


def test_format_negotiation(api, client):
    for headers, query in (({"Accept": "application/xml"}, ""), ({"Accept": "text/html"}, "?f=json"), ({}, "")):
        response = check(client.get(API + query, headers=headers), "landingPage.yaml")  # */* -> JSON
        assert response["Content-Type"] == "application/json"
    response = api.get("?f=xml")
    assert response.status_code == 400 and body(response)["type"] == EXC + "invalid-parameter-value"


def test_unknown_paths_and_methods_answer_with_exception_documents(client):
    missing = check(client.get(API + "nothing-here"), None)
    assert missing.status_code == 404 and body(missing)["type"] == EXC + "not-found"
    wrong = check(client.put(API + "processes", data="{}", content_type="application/json"), None)
    assert wrong.status_code == 405 and body(wrong)["type"] == EXC + "method-not-allowed"
    assert "GET" in wrong["Allow"]


def test_example_documents_of_the_standard_still_validate():
    # Guards the validator recipe itself (oneOf->anyOf, subscriber typo) against regressions.
    from tests.ogcschema import SCHEMAS

    examples = SCHEMAS.parent.parent / "examples" / "json"
    for name, schema in [("ProcessDescription.json", "process.yaml"), ("Execute.json", "execute.yaml"),
                         ("Result.json", "results.yaml"), ("ProcessList.json", "processList.yaml")]:
        assert_valid(schema, json.loads((examples / name).read_text()))
    assert_valid("execute.yaml", {"inputs": {}, "subscriber": {"successUri": "https://example.org/cb"}})
