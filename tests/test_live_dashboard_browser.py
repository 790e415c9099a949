"""The live dashboard in headless Chromium, started as a user starts it (`quantumflow dashboard live`), on a store
filled with the main job's data (the simulated minute replayed with models).

Needs Chromium (tests/browser.py says where it is looked for). Screenshots go to the test's tmp dir.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from backtest_results import small_result
from browser import TIMEOUT_MS, launched_chromium, served, stop
from live_store import append_book, filled_store
from playwright.sync_api import expect

from backtest.storage import save
from dashboards.live_html import price
from store import open_store

BINANCE, COINBASE = "binance:BTCUSDT", "coinbase:BTC-USD"
REFRESH_S = "0.5"  # a row committed shows within two refreshes (its latency is measured by bench.live_dashboard)


def serve(store_url: str, log: Path, models: Path) -> tuple[subprocess.Popen, str]:
    """`quantumflow dashboard live` on a free port, once it answers."""
    env = {"QF_LIVE_REFRESH_S": REFRESH_S, "QF_LIVE_BACKTESTS_S": REFRESH_S, "QF_MODELS_DIR": str(models)}
    return served(["cli.main", "dashboard", "live", "--store", store_url], log, env)


@pytest.fixture(scope="module")
def store(simulated_recording, simulated_models, tmp_path_factory) -> str:
    return filled_store(simulated_recording, simulated_models.folder, tmp_path_factory.mktemp("live-browser"))


@pytest.fixture(scope="module")
def server(store, simulated_models, tmp_path_factory):
    process, url = serve(store, tmp_path_factory.mktemp("live-server") / "server.log", simulated_models.folder)
    yield url
    stop(process)


@pytest.fixture(scope="module")
def browser():
    yield from launched_chromium()


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1500, "height": 1800})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    return page


def test_the_page_shows_the_stores_book_and_predictions_switches_instrument_and_follows_new_rows(
    browser, server, store, tmp_path
):
    page = open_page(browser, server)
    with open_store(store).reader() as reader:
        books = {i: reader.latest("book", i) for i in (BINANCE, COINBASE)}
        predictions = {i: {p["horizon"]: p for p in reader.latest_predictions(i)} for i in (BINANCE, COINBASE)}

    def shows(instrument: str) -> None:
        book, made = books[instrument], predictions[instrument]
        expect(page.get_by_test_id("ladder-bid-price-1")).to_have_text(price(book["bid_price_1"]))
        expect(page.get_by_test_id("ladder-ask-price-10")).to_have_text(price(book["ask_price_10"]))
        expect(page.get_by_test_id("ladder-mid")).to_have_text(price((book["bid_price_1"] + book["ask_price_1"]) / 2))
        for horizon in ("10", "1s"):
            expect(page.get_by_test_id(f"prediction-{horizon}-confidence")).to_have_text(
                f"{made[horizon]['confidence']:.3f}"
            )
        expect(page.get_by_test_id("heatmap-mid")).to_have_text(price((book["bid_price_1"] + book["ask_price_1"]) / 2))
        assert int(page.get_by_test_id("heatmap-levels").text_content()) > 100

    shows(BINANCE)
    assert page.locator("canvas").count() >= 5  # the heatmap and the other charts drew
    expect(page.get_by_test_id("accuracy-10")).to_be_visible()
    page.screenshot(path=tmp_path / "live-binance.png", full_page=True)

    page.locator("select").first.select_option(label="BTC-USD · coinbase")
    shows(COINBASE)
    page.screenshot(path=tmp_path / "live-coinbase.png", full_page=True)

    row = append_book(store, COINBASE, bid=books[COINBASE]["bid_price_1"] - 12.34)
    expect(page.get_by_test_id("ladder-bid-price-1")).to_have_text(price(row["bid_price_1"]))
    print(f"screenshots in {tmp_path}")
    page.close()


def test_the_paper_strategy_panel_says_how_to_make_a_backtest_then_shows_the_one_saved(
    browser, server, store, tmp_path
):
    page = open_page(browser, server)
    expect(page.get_by_test_id("ladder-mid")).to_be_visible()  # the first instrument, binance, is shown
    none = page.get_by_test_id("backtests-none")
    expect(none).to_contain_text(f"quantumflow backtest RECORDING --strategy follow --instrument {BINANCE}")
    save(small_result("bt-live", net_pnl=-1234.5), store)
    expect(page.get_by_test_id("backtest-0-strategy")).to_have_text("follow")
    expect(page.get_by_test_id("backtest-0-net-pnl")).to_have_text("-1,234.50")
    expect(page.get_by_test_id("backtest-costs")).to_contain_text("costs of the newest (bt-live)")
    page.get_by_test_id("backtests").screenshot(path=tmp_path / "live-backtests.png")
    page.locator("select").first.select_option(label="BTC-USD · coinbase")
    expect(page.get_by_test_id("backtests-none")).to_contain_text(f"--instrument {COINBASE}")  # none of coinbase
    page.close()


def test_a_store_that_cannot_be_read_shows_a_banner_and_the_page_recovers(browser, simulated_models, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    process, url = serve(f"sqlite:///{blocker / 'store.db'}", tmp_path / "server.log", simulated_models.folder)
    try:
        page = open_page(browser, url)
        expect(page.get_by_test_id("store-banner")).to_be_visible()
        page.screenshot(path=tmp_path / "live-unreachable.png", full_page=True)
        blocker.unlink()
        expect(page.get_by_test_id("store-banner")).to_have_count(0)
        expect(page.get_by_text("holds no instrument yet")).to_be_visible()
        page.close()
    finally:
        stop(process)
