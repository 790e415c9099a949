"""The backtest report written from a result built by hand (no engine): its three files, the JSON by plain names
with undefined metrics as null, and the HTML self-contained, opened in headless Chromium."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import numpy as np
import pytest
from backtest_results import small_result
from browser import TIMEOUT_MS, launched_chromium

from backtest.plain import plain, result_json
from backtest.report import annualisation_note, metric_text, metric_unit, write_report


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
        "<td>sharpe</td><td class=num>1.87</td><td>annualised</td>",
        "<td>profit_factor</td><td class=num>∞</td>",
        "<td>implementation_shortfall_bps</td><td class=num>undefined</td><td>bps</td>",
        "<td>avg_trade_duration_s</td><td class=num>8</td><td>s</td>",
    ):
        assert row in text, row
    costs = text[text.index("<table id=costs>") : text.index("<h2>Settings")]
    assert "<td>fee_per_trade</td><td>10.0</td>" in costs and "<td>slippage_bps</td><td>2.0</td>" in costs
    assert "latency_ms" not in costs and "<td>latency_ms</td><td>5.0</td>" in text
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


def test_the_result_may_state_its_own_annualisation_and_an_empty_run_still_reports(tmp_path):
    said = small_result(annualisation="per-second returns, x sqrt(31,536,000)")
    assert annualisation_note(said) == "per-second returns, x sqrt(31,536,000)"
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
    assert "net_pnl\t0.38\t$" in rows and "win_rate\t1\tfraction, 0 to 1" in rows
    assert page.title() == "Backtest bt-1"
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    page.close()
