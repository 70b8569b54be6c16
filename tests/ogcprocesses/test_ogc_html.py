"""OGC API - Processes in HTML: ``f=html`` and a browser's ``Accept`` give an HTML page of
the landing page, conformance, processes, a process, jobs and a job, whose links are all
``<a>`` elements; API clients (``*/*``, ``application/json``, no Accept) keep getting JSON."""

from __future__ import annotations

import html
import re

import pytest

from controlplane.tasks import run_execute
from tests.ogcprocesses.support import API, body, check, job_id_of, schema_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ogc")]

CHROME_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,"
    "application/signed-exchange;v=b3;q=0.7"
)
FIREFOX_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
CONF_HTML = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/html"


def _job(api) -> str:
    response = api.execute({"inputs": {"string_input": "in html"}}, prefer="respond-async")
    assert response.status_code == 201
    return job_id_of(response)


def _pages(path: str, client) -> list:
    sep = "&" if "?" in path else "?"
    return [
        client.get(API + path + sep + "f=html"),
        client.get(API + path, headers={"Accept": CHROME_ACCEPT}),
        client.get(API + path, headers={"Accept": FIREFOX_ACCEPT}),
        client.get(API + path, headers={"Accept": "text/html"}),
        client.get(API + path + sep + "f=html", headers={"Accept": "application/json"}),  # f wins
    ]


def _hrefs(text: str) -> set[str]:
    return {html.unescape(h) for h in re.findall(r'<a href="([^"]+)"', text)}


@pytest.mark.parametrize(
    ("path", "markers"),
    [
        ("", ["<h1>Honua geoprocessing", "/app/jobs/"]),
        ("conformance", [CONF_HTML, "conf/core", "conf/json"]),
        ("processes?limit=100", ["buffer", "echo"]),
        ("processes/buffer", ["<h1>Buffer", "Segments per quarter circle", '"enum": [', "/app/processes/buffer/"]),
        ("jobs", ["<h1>Jobs", "No jobs."]),
    ],
)
def test_every_page_in_html_by_f_and_by_a_browsers_accept(api, client, path, markers):
    json_doc = body(api.get(path))
    for response in _pages(path, client):
        assert response.status_code == 200
        assert response["Content-Type"] == "text/html; charset=utf-8"
        assert "Accept" in response["Vary"]  # caches keep the HTML and JSON answers apart
        text = html.unescape(response.content.decode())
        assert text.startswith("<!DOCTYPE html>") and '<html lang="en">' in text
        for marker in markers:
            assert marker in text, marker
        # Every link of the JSON document is a link of the page.
        hrefs = _hrefs(response.content.decode())
        for link in json_doc.get("links", []):
            assert link["href"] in hrefs, link["href"]


def test_job_and_job_list_pages(api, client):
    job = _job(api)
    for response in _pages(f"jobs/{job}", client):
        text = response.content.decode()
        assert response.status_code == 200 and "text/html" in response["Content-Type"]
        assert f"<h1>Job {job}</h1>" in text and '<td class="status" id="status">accepted</td>' in text
        assert f'href="/app/jobs/{job}/"' in text and ">Results<" not in text
    run_execute(job)
    text = client.get(f"{API}jobs/{job}", headers={"Accept": CHROME_ACCEPT}).content.decode()
    assert '<td class="status" id="status">successful</td>' in text
    assert '<progress id="progress" max="100" value="100">' in text
    # echo has several outputs: raw results are multipart/related.
    assert f'<a href="http://testserver/ogcapi/jobs/{job}/results" type="multipart/related">Results</a>' in text
    listing = client.get(f"{API}jobs", headers={"Accept": FIREFOX_ACCEPT}).content.decode()
    assert f'<a href="http://testserver/ogcapi/jobs/{job}?f=html">{job}</a>' in listing
    assert f'href="/app/jobs/{job}/" aria-label="Open job {job} in the job browser"' in listing


@pytest.mark.parametrize("accept", ["*/*", "application/json", None, "application/json, text/html;q=0.5"])
def test_api_clients_keep_getting_json(api, client, accept):
    job = _job(api)
    headers = {"Accept": accept} if accept else {}
    for path in ("", "conformance", "processes", "processes/echo", "jobs", f"jobs/{job}"):
        response = check(client.get(API + path, headers=headers), schema_for(path))
        assert response.status_code == 200 and response["Content-Type"] == "application/json", (path, accept)
    for path in ("", "jobs"):  # and f=json beats a browser's Accept
        response = check(client.get(API + path + "?f=json", headers={"Accept": CHROME_ACCEPT}), schema_for(path))
        assert response["Content-Type"] == "application/json"


def test_the_html_conformance_class_is_declared_and_each_document_links_its_html(api):
    assert CONF_HTML in body(api.get("conformance"))["conformsTo"]
    job = _job(api)
    # The conformance declaration has no links (confClasses.yaml has only conformsTo).
    for path in ("", "processes", "processes/echo", "jobs", f"jobs/{job}"):
        links = body(api.get(path))["links"]
        html_links = [x for x in links if x.get("type") == "text/html" and x["rel"] in ("alternate", "service-doc")]
        assert html_links, path


def test_errors_stay_exception_documents_for_browsers_too(client):
    response = check(client.get(f"{API}jobs/{'0' * 32}", headers={"Accept": CHROME_ACCEPT}), None)
    assert response.status_code == 404 and body(response)["type"].endswith("/no-such-job")
