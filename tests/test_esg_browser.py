"""The ESG dashboard in headless Chromium, started as a user starts it (the CLI, on a free loopback port).

Needs Chromium (tests/browser.py says where it is looked for). A screenshot of each step is saved in the
test's tmp dir.
"""

import pytest
from browser import TIMEOUT_MS, launched_chromium, served, stop
from playwright.sync_api import expect

from esg import Universe
from esg.loader import SAMPLE_COMPANIES, load_companies


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The dashboard served by `python -m dashboards.cli esg` on a free port; its alerts go to a tmp file."""
    log = tmp_path_factory.mktemp("esg-server") / "server.log"
    process, url = served(["dashboards.cli", "esg", "--alerts-db", str(log.with_name("alerts.sqlite"))], log)
    yield url
    stop(process)


@pytest.fixture(scope="module")
def browser():
    yield from launched_chromium()


@pytest.fixture
def page(browser, server, tmp_path):
    """A fresh session of the app, its first scorecard rendered; a screenshot is kept when the test ends."""
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server)
    page.get_by_test_id("scorecard-rating").wait_for()
    yield page
    shot = tmp_path / "esg-dashboard.png"
    page.screenshot(path=shot, full_page=True)
    print(f"screenshot: {shot}")
    page.close()


@pytest.fixture(scope="module")
def universe():
    return Universe.build(load_companies(SAMPLE_COMPANIES))


def open_tab(page, name: str) -> None:
    page.locator(".bk-tab", has_text=name).click()


def test_the_app_loads_with_a_scorecard_and_says_the_data_is_fictional(page, universe):
    expect(page.get_by_text("FICTIONAL sample")).to_be_visible()
    page.locator("select:visible").first.select_option(label="Pebbrock Mining (PBRK)")
    expect(page.get_by_test_id("scorecard-name")).to_contain_text("Pebbrock Mining")
    card = universe.scorecard("MA04")
    expect(page.get_by_test_id("scorecard-rating")).to_have_text(card.rating)
    expect(page.get_by_test_id("scorecard-overall")).to_have_text(f"{card.overall:.2f}")
    expect(page.get_by_test_id("scorecard-rank")).to_have_text(f"{card.sector_rank} of {card.sector_size}")
    expect(page.get_by_text("Carbon intensity (scopes 1+2)").first).to_be_visible()
    assert page.locator(".bk-Canvas, canvas").count() > 0  # the charts drew


def test_a_what_if_change_updates_the_rating(page):
    open_tab(page, "What-if")
    page.locator("select:visible").first.select_option(label="Marrowfell Steel (MRWF)")
    amount = page.locator(".whatif-amount input")
    amount.fill("0")
    amount.press("Enter")
    expect(page.get_by_test_id("original-rating")).to_have_text("BB")
    expect(page.get_by_test_id("whatif-rating")).to_have_text("BB")
    amount.fill("-10")  # cut scopes 1+2 by a tenth
    amount.press("Enter")
    expect(page.get_by_test_id("whatif-rating")).to_have_text("BBB")
    expect(page.get_by_test_id("original-rating")).to_have_text("BB")


def test_an_uploaded_portfolio_shows_its_weighted_score(page, universe, tmp_path):
    open_tab(page, "Portfolio")
    holdings = tmp_path / "holdings.csv"
    holdings.write_text("holding,weight\nPBRK,3\nCNDM,1\nNOT-LISTED,1\n")
    page.locator("input[type=file]").set_input_files(holdings)
    scores = universe.scored["overall"]
    expected = 0.75 * scores["MA04"] + 0.25 * scores["UT03"]  # weights 3:1 over the 80% that is covered
    expect(page.get_by_test_id("portfolio-coverage")).to_have_text("80.0%")
    expect(page.get_by_test_id("portfolio-score")).to_have_text(f"{expected:.2f}")
    expect(page.get_by_text("NOT-LISTED (20.0%)")).to_be_visible()


def test_sentiment_alerts_are_shown_for_holdings(page):
    open_tab(page, "Sentiment alerts")
    expect(page.get_by_test_id("alert-count")).to_have_text("5")
    expect(page.get_by_text("Explosion at Harrowvale Oil & Gas refinery kills two workers").first).to_be_visible()
