"""The job browser in a real browser: Debian's headless Chromium driven by Playwright (the
Python package, with ``executable_path``: no browser download) against a live Honua with a
job worker. Screenshots go to test-artifacts/browser/."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from controlplane.contracts import RunStatus
from controlplane.models import Membership, ProcessRun
from tests.browser.support import APP, POINTS
from tests.identity import PASSWORD

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("echo_tier", "job_worker"),
]

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts" / "browser"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 30_000
JOB_PATH = r"/app/jobs/[0-9a-f-]{36}/"


def _chromium() -> str:
    path = os.environ.get("HONUA_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Debian's chromium is needed (make test installs it; or set HONUA_CHROMIUM)"
    return path


@pytest.fixture(scope="module")
def chromium(django_db_setup: None) -> Iterator[Any]:
    """One headless Chromium for the module (each test gets a fresh context: no cookies)."""
    from playwright.sync_api import sync_playwright

    vendor = Path(settings.BASE_DIR) / "browser" / "static" / "browser" / "vendor" / "leaflet" / "leaflet.js"
    assert vendor.is_file(), "the map library is missing: run `make setup` (npm ci in frontend/, then the copy)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as mp, sync_playwright() as p:
        # Playwright's sync API keeps an event loop on this thread; the tests' own ORM calls
        # (fixtures, checks, the flush between tests) are plain blocking calls all the same.
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any, live_server: Any, alice: Membership, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page in a fresh browser context on the live server; a screenshot when the test ends."""
    context = chromium.new_context(base_url=live_server.url, accept_downloads=True, viewport={"width": 1200, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    shot(tab, request.node.name + "-end")
    context.close()
    assert errors == [], f"JavaScript errors: {errors}"


def shot(tab: Any, name: str) -> None:
    tab.screenshot(path=str(ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"), full_page=True)


def at(path: str) -> re.Pattern[str]:
    """A URL of this path (a sign-in URL's ?next= does not match)."""
    return re.compile(r"^https?://[^/]+" + path + "$")


def sign_in(tab: Any, path: str) -> None:
    """Open ``path``, be sent to the sign-in page, sign in, land back on ``path``."""
    tab.goto(path)
    assert "/accounts/login/" in tab.url
    tab.get_by_label("User name").fill("alice")
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(at(re.escape(path)))


def job_of(tab: Any) -> str:
    found = re.search(r"/app/jobs/([0-9a-f-]{36})/$", tab.url)
    assert found, tab.url
    return found.group(1)


def test_run_buffer_from_its_form_watch_it_finish_see_it_on_the_map_and_download_it(page):
    sign_in(page, f"{APP}processes/buffer/")
    page.get_by_label("Input features (required)", exact=True).fill(json.dumps(POINTS))
    page.get_by_label("Distance (required)", exact=True).fill("100")
    page.get_by_label("Distance: unit").select_option("meter")
    page.get_by_label("Run as a job (async)").check()
    shot(page, "buffer-form")
    page.get_by_role("button", name="Run Buffer").click()
    page.wait_for_url(at(JOB_PATH))
    job = job_of(page)

    page.wait_for_function("document.getElementById('job-progress').value === 100")
    assert page.locator("#job-status").inner_text() == "Succeeded"
    assert page.locator("#progress-text").inner_text() == "100%"
    assert page.locator("#job-live").get_attribute("aria-live") == "polite"
    assert ProcessRun.objects.get(id=job).status == RunStatus.SUCCEEDED.value

    # Drawn on the map: 3 input points and 3 buffers, on a plain background (no tile layer).
    page.wait_for_selector('#map-summary[data-output-features="3"]')
    assert page.locator("#map-summary").inner_text() == "Drawn on the map: 3 input features and 3 output features."
    assert page.locator(".leaflet-overlay-pane path[fill='#d9480f']").count() == 3
    assert page.locator(".leaflet-overlay-pane path[fill='#2b6cb0']").count() == 3
    assert page.locator(".leaflet-tile-pane img").count() == 0
    box = page.locator(".leaflet-overlay-pane path[fill='#d9480f']").first.bounding_box()
    assert box is not None and box["width"] > 10 and box["height"] > 10  # fitted to the features
    shot(page, "buffer-job")

    with page.expect_download() as download:
        page.get_by_role("link", name="GeoJSON of Buffered features").click()
    assert download.value.suggested_filename == f"buffer-{job[:8]}-result.geojson"
    doc = json.loads(Path(download.value.path()).read_text())
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 3
    assert {f["geometry"]["type"] for f in doc["features"]} == {"Polygon"}
    assert [f["properties"]["name"] for f in doc["features"]] == ["Aloha Tower", "Iolani Palace", "Kakaako Park"]
    with page.expect_download() as esri:
        page.get_by_role("link", name="Esri JSON of Buffered features").click()
    assert json.loads(Path(esri.value.path()).read_text())["geometryType"] == "esriGeometryPolygon"

    page.get_by_role("link", name="Jobs", exact=True).click()
    row = page.locator("table.jobs tbody tr").first
    assert job in row.inner_text() and "Succeeded" in row.inner_text()


def test_progress_and_messages_update_without_a_reload(page):
    sign_in(page, f"{APP}processes/echo/")
    page.get_by_label("String input").fill("slow hello")
    page.get_by_label("Pause (seconds)").fill("3")
    page.get_by_label("Run as a job (async)").check()
    page.get_by_role("button", name="Run Echo").click()
    page.wait_for_url(at(JOB_PATH))
    page.evaluate("window.__samePage = true")
    # Part way: running, a progress between 0 and 100, the executor's messages listed.
    page.wait_for_function(
        "(() => { const v = document.getElementById('job-progress').value; return v > 0 && v < 100; })()"
    )
    assert page.locator("#job-status").inner_text() == "Running"
    page.wait_for_selector("#job-step:has-text('Paused')")  # the executor's progress note
    shot(page, "echo-running")
    page.wait_for_function("document.getElementById('job-progress').value === 100")
    page.wait_for_selector("#job-status[data-status='succeeded']")
    page.wait_for_selector("#job-messages li:has-text('Succeeded.')")
    assert page.evaluate("window.__samePage") is True  # no reload happened
    # The outputs section was swapped in when the job finished.
    page.wait_for_selector("#outputs td:has-text('slow hello')")
    assert page.locator("#cancel-button").count() == 0


def test_cancel_a_long_running_job(page):
    sign_in(page, f"{APP}processes/echo/")
    page.get_by_label("String input").fill("long")
    page.get_by_label("Pause (seconds)").fill("60")
    page.get_by_label("Run as a job (async)").check()
    page.get_by_role("button", name="Run Echo").click()
    page.wait_for_url(at(JOB_PATH))
    job = job_of(page)
    page.wait_for_selector("#job-status[data-status='running']")
    shot(page, "echo-before-cancel")
    page.get_by_role("button", name="Cancel job").click()
    page.wait_for_selector("#job-status[data-status='cancelled']")
    assert "Cancellation requested" in page.locator(".notices").inner_text()
    assert page.locator("#cancel-button").count() == 0
    assert ProcessRun.objects.get(id=job).status == RunStatus.CANCELLED.value
    progress = page.locator("#job-progress").evaluate("e => e.value")
    assert progress < 100


def test_keyboard_only_sign_in_and_run(page):
    page.goto(f"{APP}processes/echo/")
    assert page.evaluate("document.activeElement.id") == "id_username"  # autofocus
    page.keyboard.type("alice")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(at("/app/processes/echo/"))

    def tab_to(element_id: str, limit: int = 60) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == element_id:
                return
        raise AssertionError(f"Tab never reached #{element_id}")

    tab_to("id_in_string_input")
    page.keyboard.type("typed, not clicked")
    tab_to("mode_sync")
    page.keyboard.press("ArrowDown")  # radio group: the next mode
    assert page.evaluate("document.activeElement.id") == "mode_async"
    assert page.evaluate("document.getElementById('mode_async').checked") is True
    tab_to("run-button")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # the focus is visible
    shot(page, "keyboard-focus-on-run")
    page.keyboard.press("Enter")
    page.wait_for_url(at(JOB_PATH))
    page.wait_for_selector("#job-status[data-status='succeeded']")
    job = job_of(page)
    run = ProcessRun.objects.get(id=job)
    assert run.mode == "async" and run.inputs["string_input"] == "typed, not clicked"
    # The job page's buttons are reachable by keyboard too.
    tab_to("dismiss-button")
    page.keyboard.press("Enter")
    page.wait_for_selector("#outputs:has-text('was dismissed')")
