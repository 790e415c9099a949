"""The backtest report written from a result built by hand (no engine): its three files, the JSON by plain names
with undefined metrics as null, and the HTML self-contained, opened in headless Chromium."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import numpy as np
import pytest
from backtest_results import T0, S, small_result
from browser import TIMEOUT_MS, launched_chromium

from backtest.plain import plain, result_json
from backtest.report import (
    annualisation_note,
    metric_text,
    metric_unit,
    position_unit,
    setting_text,
    short_sample_note,
    write_report,
)

CONTEXT = "/data/binance/spot_btcusdt_20240808.gz"


def engine_like_result(**changes):
    """The small result with what the engine adds: a context recording replayed first, the strategy's own
    settings, nested limits, the order counts, the rejections by reason and the times in ns."""
    result = small_result()
    settings = {
        **result.settings,
        "strategy_settings": {"skew_bps": 2, "half_spread_bps": 0.5},
        "limits": {"max_position": None, "capital": 100_000.0},
        "seed": 123456,
        "signals": 45136,
        "context": [CONTEXT],
    }
    metrics = {
        **result.metrics,
        "orders": 2499,
        "cancels": 2497,
        "clipped": 12,
        "rejected": {"no liquidity": 3},
        "start_ns": T0 + S,
        "end_ns": T0 + 10 * S + 535_092_233,
        "annualisation": "sqrt(31536000 s / 1 s) from equity marked to mid every 1 s",
    }
    recordings = [CONTEXT, *result.recordings]
    return replace(result, settings=settings, metrics=metrics, recordings=recordings, **changes)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return write_report(small_result(), tmp_path_factory.mktemp("report") / "new folder")


def test_the_three_files_are_written(report):
    assert set(report) == {"equity", "html", "json"}
    assert [p.name for p in report.values()] == ["equity.png", "report.html", "result.json"]
    assert report["equity"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_json_has_the_metrics_by_plain_names_and_undefined_ones_as_null(report):
    data = json.loads(report["json"].read_text())  # standard JSON: no NaN or Infinity in it
    assert data == result_json(small_result())
    metrics = data["metrics"]
    for name in ("net_pnl", "gross_pnl", "fees", "trades", "sharpe", "sortino", "win_rate", "max_drawdown"):
        assert name in metrics, name
    assert (metrics["net_pnl"], metrics["trades"], metrics["sharpe"], metrics["win_rate"]) == (0.38, 1, 1.87, 1.0)
    assert metrics["sortino"] is None and metrics["profit_factor"] is None  # infinite
    assert metrics["implementation_shortfall_bps"] is None  # NaN
    assert data["settings"]["threshold"] == 0.6 and data["benchmarks"]["twap"]["net_pnl"] == -1.25
    assert (data["id"], data["strategy"], data["fills"], data["equity_samples"]) == ("bt-1", "follow", 2, 11)


def test_plain_values():
    assert plain({"a": (np.int64(3), np.float32(0.5), np.nan), 1: np.array([np.inf, 2.0]), "b": np.bool_(True)}) == {
        "a": [3, 0.5, None],
        "1": [None, 2.0],
        "b": True,
    }


def test_the_html_is_self_contained_with_the_metrics_costs_benchmarks_and_annualisation(report):
    text = report["html"].read_text()
    assert not re.search(r"(src|href)=\"(?!data:)", text)  # nothing fetched from elsewhere
    [image] = re.findall(r'<img id="equity" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert image.startswith("iVBORw0KGgo")  # a PNG
    for row in (
        "<td>net_pnl</td><td class=num>0.38</td><td>$</td>",
        "<td>trades</td><td class=num>1</td><td>round trips</td>",
        "<td>sharpe</td><td class=num>1.87</td><td>annualised (short sample",
        "<td>profit_factor</td><td class=num>∞</td>",
        "<td>implementation_shortfall_bps</td><td class=num>undefined</td><td>bps</td>",
        "<td>avg_trade_duration_s</td><td class=num>8</td><td>s</td>",
    ):
        assert row in text, row
    costs = text[text.index("<table id=costs>") : text.index("<h2>Strategy settings")]
    assert "<td>fee_per_trade</td><td>10</td>" in costs and "<td>slippage_bps</td><td>2</td>" in costs
    assert "latency_ms" not in costs and "<td>latency_ms</td><td>5</td>" in text
    assert "<th>follow</th><th>twap</th><th>immediate</th>" in text
    assert "<td>implementation_shortfall_bps (bps)</td><td class=num>undefined</td><td class=num>1.5</td>" in text
    assert "one every 1 s (median spacing)" in text and "√31,536,000" in text
    assert "2 fills (1 maker, 1 taker): fees 0.05, slippage 0.12" in text


def test_units_and_numbers_as_shown():
    assert [metric_unit(n) for n in ("fees", "max_drawdown_pct", "hold_s", "edge_bps", "avg_pnl", "x")] == [
        "$", "%", "s", "bps", "$", ""
    ]  # fmt: skip
    assert metric_text("net_pnl", -1234.567) == "-1,234.57" and metric_text("sharpe", -math.inf) == "-∞"
    assert metric_text("trades", np.int64(12000)) == "12,000" and metric_text("x", None) == "undefined"
    assert metric_text("turnover", 1_387_102.3117) == "1,387,102.31"  # money, never 1.387e+06


def test_times_print_as_utc_fractions_as_percentages_and_ids_plainly():
    assert metric_text("start_ns", 1_723_161_601_000_000_000) == "2024-08-09 00:00:01.000 UTC"
    assert metric_text("end_ns", T0 + 10 * S + 535_092_233) == "2024-08-08 00:00:10.535 UTC"
    assert metric_text("win_rate", 0.11607) == "11.6" and metric_unit("win_rate") == "% of round trips won"
    assert metric_text("exposure", 0.977) == "97.7" and metric_unit("exposure") == "% of the time in a position"
    assert metric_text("rejected", {}) == "none" and metric_text("rejected", {"no liquidity": 3}) == "no liquidity: 3"
    assert setting_text("seed", 123456) == "123456" and setting_text("signals", 45136) == "45,136"
    assert setting_text("limits.capital", 100_000.0) == "100,000" and setting_text("maker_fee_bps", -0.2) == "-0.2"
    assert setting_text("limits.max_position", None) == "none" and setting_text("context", []) == "none"
    assert [position_unit(i) for i in ("binance:BTCUSDT", "coinbase:BTC-USD", "binance_usdm:ETHUSDT", "x:Z")] == [
        "BTC", "BTC", "ETH", "units of the instrument"
    ]  # fmt: skip


def test_a_run_shorter_than_a_day_says_its_sharpe_and_sortino_mean_little():
    short = short_sample_note(small_result())
    assert short is not None and "annualising from 10 s of 1 s samples" in short
    assert "only their sign and comparisons between runs on the same data" in short
    assert short_sample_note(replace(small_result(), end_ns=T0 + 2 * 86_400 * S)) is None


def test_the_html_lists_traded_and_context_recordings_orders_and_strategy_settings(tmp_path):
    text = write_report(engine_like_result(), tmp_path)["html"].read_text()
    assert "<p id=recordings>Recordings (traded): <code>/data/binance/spot_btcusdt_20240809.gz</code></p>" in text
    assert f"<p id=context>Context (replayed first, not traded): <code>{CONTEXT}</code></p>" in text
    assert '<td class=num title="1723075201000000000 ns">2024-08-08 00:00:01.000 UTC</td>' in text
    assert "1,723," not in text  # no time printed like money
    assert "<td>win_rate</td><td class=num>100.0</td><td>% of round trips won</td>" in text
    assert "<td>sharpe</td><td class=num>1.87</td><td>annualised (short sample: magnitude means little" in text
    assert "<p id=short-sample>" in text and "annualising from 10 s of 1 s samples" in text
    assert text.count("sqrt(31536000 s / 1 s)") == 1 and "<td>annualisation</td>" not in text
    orders = text[text.index("<table id=orders>") : text.index("<h2>Costs")]
    for row in ("orders sent</td><td class=num>2,499", "cancels</td><td class=num>2,497"):
        assert row in orders, row
    assert "limits</td><td class=num>12" in orders and "no liquidity: 3" in orders
    strategy = text[text.index("<table id=strategy_settings>") : text.index("<h2>Settings")]
    assert "<td>skew_bps</td><td>2</td>" in strategy and "<td>half_spread_bps</td><td>0.5</td>" in strategy
    settings = text[text.index("<table id=settings>") :]
    assert "<td>seed</td><td>123456</td>" in settings and "<td>signals</td><td>45,136</td>" in settings
    assert "<td>limits.capital</td><td>100,000</td>" in settings and "context" not in settings
    assert "skew_bps" not in settings


def test_a_run_without_counts_or_strategy_settings_says_so(report):
    text = report["html"].read_text()
    assert (
        "<p id=strategy_settings>none stated: the strategy&#x27;s defaults</p>" in text
        and "not recorded by this run" in text
    )
    long = replace(small_result(), end_ns=T0 + 2 * 86_400 * S)
    assert "short sample" not in write_report(long, report["html"].parent / "long")["html"].read_text()


def test_the_result_may_state_its_own_annualisation_and_an_empty_run_still_reports(tmp_path):
    said = small_result(annualisation="per-second returns, x sqrt(31,536,000)")
    assert annualisation_note(said) == "Sharpe and Sortino are annualised: per-second returns, x sqrt(31,536,000)."
    empty = replace(small_result(), equity_ts=np.empty(0, np.int64), equity=np.empty(0), position=np.empty(0))
    empty = replace(empty, fills=[], benchmarks={})
    paths = write_report(empty, tmp_path)
    text = paths["html"].read_text()
    assert "No fills." in text and "need at least two equity samples" in text and "Benchmarks" not in text


@pytest.fixture(scope="module")
def browser():
    yield from launched_chromium()


def test_the_report_opens_in_a_browser_with_its_picture_and_metrics(browser, report):
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(report["html"].as_uri())
    image = page.locator("img#equity")
    assert image.evaluate("img => img.complete && img.naturalWidth") > 0
    assert image.evaluate("img => img.naturalHeight") > 0
    rows = page.locator("#metrics tr").all_inner_texts()
    assert "net_pnl\t0.38\t$" in rows and "win_rate\t100.0\t% of round trips won" in rows
    assert page.locator("#short-sample").is_visible()
    assert page.title() == "Backtest bt-1"
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    page.close()
