"""Backtest results in the store: the row a result makes, saved and read back whole, saved twice as one row,
listed newest first with filters. On SQLite, and on QuestDB when QF_TEST_QUESTDB names a server."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from backtest_results import T0, S, small_result
from store_backends import open_visible

from backtest.storage import result_row, save
from store import StoreConfigError, StoreError, open_store
from store.schema import TABLES


@pytest.fixture
def store(store_url):
    return open_visible(store_url)


def test_a_result_is_one_row_with_json_and_its_headline_metrics_as_columns():
    row = dict(zip(TABLES["backtests"].names, result_row(small_result()), strict=True))
    assert row["ts"] == T0 + 3_600 * S and row["id"] == "bt-1" and row["start_ns"] == T0 + 123
    assert json.loads(row["recordings"]) == ["/data/binance/spot_btcusdt_20240809.gz"]
    assert json.loads(row["settings"])["threshold"] == 0.6  # a NumPy float made plain
    metrics = json.loads(row["metrics"])
    assert metrics["sortino"] is None and metrics["implementation_shortfall_bps"] is None  # inf and NaN: null
    assert (row["net_pnl"], row["trades"], row["sharpe"], row["win_rate"]) == (0.38, 1, 1.87, 1.0)
    assert row["max_drawdown"] == 1.5 and row["profit_factor"] is None
    assert json.loads(row["benchmarks"])["twap"]["net_pnl"] == -1.25


def test_a_result_saved_is_read_back_whole_and_saving_it_again_keeps_one_row(store):
    result = small_result()
    assert save(result, store.url) == store.url
    save(result, store.url)
    with store.reader() as r:
        assert r.count("backtests") == 1
        stored = r.backtest("bt-1")
    assert stored["ts"] == result.created_ns and stored["end_ns"] == T0 + 10 * S + 456  # exact ns
    assert stored["strategy"] == "follow" and stored["instrument"] == "binance:BTCUSDT"
    assert stored["recordings"] == result.recordings
    assert stored["settings"] == {**result.settings, "threshold": 0.6}
    assert stored["metrics"] == {k: v if math.isfinite(v) else None for k, v in result.metrics.items()}
    assert stored["benchmarks"] == result.benchmarks
    assert (stored["sharpe"], stored["profit_factor"]) == (1.87, None)


def test_backtests_are_listed_newest_first_and_filtered(store):
    results = [
        small_result("a", T0 + 1 * S),
        small_result("b", T0 + 3 * S, strategy="market-maker"),
        small_result("c", T0 + 2 * S, instrument="coinbase:BTC-USD", sharpe=math.nan),
        small_result("d", T0 + 3 * S),  # same time as b: id breaks the tie
    ]
    results[2] = replace(results[2], benchmarks={})  # none: stored as NULL
    for result in results:
        save(result, store.url)
    with store.reader() as r:
        assert [b["id"] for b in r.backtests()] == ["b", "d", "c", "a"]
        assert [b["id"] for b in r.backtests(limit=2)] == ["b", "d"]
        assert [b["id"] for b in r.backtests(strategy="follow")] == ["d", "c", "a"]
        assert [b["id"] for b in r.backtests(instrument="coinbase:BTC-USD")] == ["c"]
        assert [b["id"] for b in r.backtests(strategy="follow", instrument="binance:BTCUSDT")] == ["d", "a"]
        assert r.backtests(strategy="nope") == [] and r.backtests(limit=0) == []
        c = r.backtest("c")
        assert c["sharpe"] is None and c["metrics"]["sharpe"] is None and c["benchmarks"] is None
        assert r.backtest("zz") is None


def test_an_empty_store_has_no_backtests(store):
    with store.reader() as r:
        assert r.backtests() == [] and r.backtest("bt-1") is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.backtests(limit=-1), "limit must be an integer"),
        (lambda r: r.backtests(strategy=""), "strategy must be a non-empty string"),
        (lambda r: r.backtests(instrument=3), "instrument must be a non-empty string"),
        (lambda r: r.backtest(""), "id must be a non-empty string"),
    ],
)
def test_bad_reader_arguments_are_store_errors(tmp_path, call, message):

    with open_store(f"sqlite:///{tmp_path / 's.db'}").reader() as r, pytest.raises(StoreError, match=message):
        call(r)


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (small_result(net_pnl=math.nan), "metric 'net_pnl' is missing or not finite"),
        (small_result(trades=1.5), "trades must be a whole number"),
        (small_result(id=""), "id must be a non-empty string"),
    ],
)
def test_a_result_the_table_cannot_hold_is_refused_naming_why(result, message):
    with pytest.raises(ValueError, match=message):
        result_row(result)


def test_saving_to_a_bad_store_url_says_what_is_accepted():
    with pytest.raises(StoreConfigError, match="accepted forms"):
        save(small_result(), "postgres://db")
