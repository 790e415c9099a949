"""The API's interactive docs in headless Chromium with every request off the loopback interface blocked: the
pages render the operations from the package's own assets, as on a machine without internet.

A screenshot of each page is kept in the test's tmp dir. Needs Chromium (tests/browser.py says where it is
looked for).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import pytest
from browser import TIMEOUT_MS, launched_chromium
from playwright.sync_api import expect
from test_api import SETTINGS, serve

from api.docs import ASSETS_URL


def loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory):
    store = tmp_path_factory.mktemp("docs") / "empty.db"  # the docs need no data
    with serve(SETTINGS.__class__(store_url=f"sqlite:///{store}", rate_limit=None)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    yield from launched_chromium()


@pytest.fixture
def page(browser):
    """A page whose requests off loopback are aborted and listed in ``page.outside``."""
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.outside = []
    page.console = []
    page.on("console", lambda message: page.console.append(message.text))

    def route(request_route):
        if loopback(request_route.request.url):
            request_route.continue_()
        else:
            page.outside.append(request_route.request.url)
            request_route.abort()

    page.route("**/*", route)
    yield page
    page.close()


def blocked(page) -> list[str]:
    """What the pages' Content-Security-Policy stopped, from the console."""
    return [message for message in page.console if "Content Security Policy" in message]


def test_swagger_ui_shows_the_operations_without_leaving_loopback(page, docs_server, tmp_path):

    served = []
    page.on("response", lambda response: served.append((response.url, response.status)))
    page.goto(f"{docs_server}/docs")
    expect(page.get_by_text("QuantumFlow API").first).to_be_visible()
    for path in ("/v1/instruments", "/v1/predictions/{instrument}/latest", "/v1/predict", "/health"):
        expect(page.locator(".opblock-summary-path", has_text=path).first).to_be_visible()
    page.get_by_text("/v1/instruments").first.click()  # an operation opens
    expect(page.get_by_role("button", name="Try it out")).to_be_visible()
    assert page.outside == [] and blocked(page) == []
    page.screenshot(path=tmp_path / "swagger-ui.png", full_page=True)
    assets = {url.split(ASSETS_URL, 1)[1]: status for url, status in served if ASSETS_URL in url}
    assert assets["/swagger-ui-bundle.js"] == 200 and assets["/swagger-ui.css"] == 200


def test_redoc_shows_the_operations_without_leaving_loopback(page, docs_server, tmp_path):

    page.goto(f"{docs_server}/redoc")
    expect(page.get_by_text("QuantumFlow API").first).to_be_visible()
    expect(page.get_by_text("/v1/arbitrage").first).to_be_attached()
    expect(page.get_by_role("heading", name="Latest Predictions")).to_be_visible()
    page.screenshot(path=tmp_path / "redoc.png")
    assert page.outside == []
    # the footer's logo, which ReDoc loads from its makers' site and hides when it cannot: the page's policy stops it
    assert all("logo-mini.svg" in message for message in blocked(page))
