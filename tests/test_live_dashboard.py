"""The live dashboard's data layer on a store filled by replaying the simulated minute with models."""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import replace

import orjson
import pytest
from backtest_results import T0, S, small_result
from live_store import append_book, filled_store

from backtest.storage import save
from dashboards import live_html
from dashboards.live_data import LiveFeed, Series
from dashboards.live_settings import LiveSettings, signal
from store import open_store

BINANCE, COINBASE = "binance:BTCUSDT", "coinbase:BTC-USD"


@pytest.fixture(scope="module")
def store(simulated_recording, simulated_models, tmp_path_factory) -> str:
    return filled_store(simulated_recording, simulated_models.folder, tmp_path_factory.mktemp("live-store"))


@pytest.fixture
def feed(store, tmp_path):
    copy = tmp_path / "store.db"  # each test may append to its own copy
    with contextlib.closing(sqlite3.connect(store.removeprefix("sqlite:///"))) as conn:
        conn.execute(f"VACUUM INTO '{copy}'")
    feed = LiveFeed(LiveSettings(store_url=f"sqlite:///{copy}"))
    yield feed
    feed.stop()


def test_a_poll_reads_the_latest_book_features_and_predictions_of_a_watched_instrument(feed):
    feed.poll()  # lists the instruments; nothing is watched yet
    assert feed.instruments == [BINANCE, COINBASE] and feed.error is None
    assert feed.data == {}
    data = feed.watch(BINANCE)
    feed.poll()
    with open_store(feed.store.url).reader() as reader:
        book = reader.latest("book", BINANCE)
        assert {k: data.book[k] for k in data.book} == {k: book[k] for k in data.book}
        assert data.features["mid"] == reader.latest("features", BINANCE)["mid"]
        assert data.predictions == reader.latest_predictions(BINANCE)
        trades = reader.count("trades", BINANCE)
    assert [p["horizon"] for p in data.predictions] == ["10", "1s"]
    assert 0 < len(data.trades.rows) <= trades  # the window holds the last two minutes: all of the one recorded
    assert data.heat.rows and all(price > 0 and size > 0 for _, price, size, _ in data.heat.rows)
    assert data.mids.rows[-1][1] == (book["bid_price_1"] + book["ask_price_1"]) / 2


def test_the_scores_are_those_of_the_matured_predictions_in_the_window(feed):
    data = feed.watch(BINANCE)
    feed.poll()
    newest = max(p["ts"] for p in data.predictions)
    with open_store(feed.store.url).reader() as reader:
        rows = reader.prediction_range(BINANCE, newest - 60 * 10**9, newest + 1, limit=100_000)
    for horizon in ("10", "1s"):
        matured = [r for r in rows if r["horizon"] == horizon and r["label"] is not None]
        scores = data.scores[horizon]
        assert scores.n == len(matured) > 100
        assert scores.accuracy == pytest.approx(sum(r["predicted"] == r["label"] for r in matured) / len(matured))
        assert 0 <= scores.macro_f1 <= 1
        assert sum(scores.calibration["count"]) == len(matured)
    assert data.weights.rows and data.accuracy.rows  # the window's weights and rolling accuracy over time
    ts, weights = data.weights.rows[-1]
    assert {"bayes", "lstm", "transformer"} <= set(weights)  # a line a model, not a model and horizon
    bucket = [r for r in rows if r["ts"] // feed.bucket_ns * feed.bucket_ns == ts and r["model_weights"]]
    first = {}  # the bucket's first weight of each horizon, as the chart takes it
    for row in bucket:
        first.setdefault(row["horizon"], orjson.loads(row["model_weights"])["lstm"])
    assert weights["lstm"] == pytest.approx(sum(first.values()) / len(first))


def test_rows_appended_after_a_poll_come_as_the_only_new_rows(feed):
    data = feed.watch(BINANCE)
    feed.poll()
    position = data.mids.end
    row = append_book(feed.store.url, BINANCE, bid=59_000.5, after_ns=10**9)
    feed.poll()
    new, whole = data.mids.since(position)
    assert not whole and new == [(row["ts"], (59_000.5 + row["ask_price_1"]) / 2)]
    assert data.book["bid_price_1"] == 59_000.5
    assert data.mids.since(data.mids.end) == ([], False)


def test_the_newest_stored_backtests_of_the_instrument_are_read_at_their_own_slow_rate(feed):
    data = feed.watch(BINANCE)
    feed.poll()
    assert data.backtests == []  # read, and none stored
    for n in range(6):
        save(small_result(f"bt-{n}", created_ns=T0 + n * S), feed.store.url)
    save(small_result("other", instrument=COINBASE), feed.store.url)
    feed.poll()
    assert data.backtests == []  # read again only every backtests_every_s (30 s)
    data.backtests_read -= feed.settings.backtests_every_s
    feed.poll()
    assert [b["id"] for b in data.backtests] == ["bt-5", "bt-4", "bt-3", "bt-2", "bt-1"]  # newest first, five
    with open_store(feed.store.url).reader() as reader:
        assert data.backtests == reader.backtests(5, instrument=BINANCE)


def test_the_backtests_panel_shows_what_is_stored_or_how_to_make_one(tmp_path):
    url, settings = f"sqlite:///{tmp_path / 'store.db'}", LiveSettings()
    none = live_html.backtests([], BINANCE, url, settings)
    assert f"quantumflow backtest RECORDING --strategy follow --instrument binance:BTCUSDT --store {url}" in none
    costs = {"costs": {"fixed_fee": 10.0, "taker_bps": 0.5}, "queue": "prob"}
    newest = replace(small_result("bt-9", T0 + 2 * S, "market-maker"), end_ns=T0 + 86_400 * S, settings=costs)
    save(small_result("bt-8", T0 + S, net_pnl=-1234.5, profit_factor=0.5), url)
    save(newest, url)
    with open_store(url).reader() as reader:
        text = live_html.backtests(reader.backtests(5, instrument=BINANCE), BINANCE, url, settings)
    for shown in ("market-maker", "0.38", "0.40", "0.05", "100.0%", "1.87", "1.50", "—", "-1,234.50", "0.50"):
        assert f">{shown}</td>" in text
    assert text.index("market-maker") < text.index("-1,234.50")  # newest first
    assert ">2024-08-08 00:00:00 → 2024-08-09 00:00:00</td>" in text  # another day: the end's date too
    assert "costs of the newest (bt-9): fixed_fee 10 · taker_bps 0.5</div>" in text


def test_a_store_that_cannot_be_reached_is_reported_and_read_again_once_it_can(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    feed = LiveFeed(LiveSettings(store_url=f"sqlite:///{blocker / 'store.db'}"))
    feed.poll()
    assert feed.error is not None and "not-a-folder" in feed.error
    blocker.unlink()
    feed.poll()
    assert feed.error is None and feed.instruments == []


def test_a_series_hands_a_late_session_everything_it_keeps():
    series = Series(keep=3)
    series.extend([(1,), (2,)])
    assert series.since(-1) == ([(1,), (2,)], True)
    assert series.since(1) == ([(2,)], False)
    series.extend([(3,), (4,), (5,)])
    assert series.since(1) == ([(3,), (4,), (5,)], True)  # (2,) was dropped: start over


def test_signal_labels_follow_the_probability_thresholds():
    settings = LiveSettings(buy_prob=0.45, strong_prob=0.6)
    assert signal(0.1, 0.65, settings) == "strong buy"
    assert signal(0.2, 0.5, settings) == "buy"
    assert signal(0.35, 0.3, settings) == "neutral"
    assert signal(0.5, 0.2, settings) == "sell"
    assert signal(0.7, 0.1, settings) == "strong sell"


def test_settings_come_from_the_environment_and_a_bad_one_names_itself():
    settings = LiveSettings.from_env(environ={"QF_LIVE_REFRESH_S": "0.5", "QF_LIVE_STRONG_PROB": "0.7"})
    assert settings.refresh_s == 0.5 and settings.strong_prob == 0.7
    with pytest.raises(ValueError, match="QF_LIVE_REFRESH_S"):
        LiveSettings.from_env(environ={"QF_LIVE_REFRESH_S": "fast"})
    with pytest.raises(ValueError, match="QF_LIVE_STRONG_PROB"):
        LiveSettings.from_env(environ={"QF_LIVE_BUY_PROB": "0.5", "QF_LIVE_STRONG_PROB": "0.4"})


def test_empty_states_say_what_is_missing(tmp_path):
    assert "no models in" in live_html.no_predictions(BINANCE, tmp_path) and "quantumflow train" in (
        live_html.no_predictions(BINANCE, tmp_path)
    )
    assert "no order book" in live_html.ladder(None, None, BINANCE)
    scores, why = live_html.baseline(tmp_path)
    assert scores == {} and "run quantumflow train" in why
    assert "two venues" in live_html.arbitrage([], [BINANCE], LiveSettings())


def test_the_volatility_alert_compares_the_forecast_with_the_last_minute():
    from quantumflow.features import FEATURE_NAMES

    features = dict.fromkeys(FEATURE_NAMES, 0.0) | {"realized_variance_10s": 1.0, "realized_variance_60s": 4.0}
    settings = LiveSettings(vol_alert_ratio=2.0)
    calm = [{"horizon": h, "model": "har", "forecast": 1.0} for h in ("10s", "60s")]
    assert "volatility-alert" not in live_html.microstructure(features, settings, calm)
    stormy = [{"horizon": "10s", "model": "har", "forecast": 4.5}, {"horizon": "10s", "model": "last", "forecast": 0.1}]
    text = live_html.microstructure(features, settings, stormy)  # 4.5 bps ahead against 2 bps over the last 60 s
    assert "volatility-alert" in text and "forecast volatility of the next 10 s 4.50 bps is 2.2x" in text
    assert "4.500 / —" in text  # the forecast shown beside the realized volatility
    features["realized_variance_10s"] = 16.0  # no forecast yet: the last 10 s' realized volatility, 4 bps
    assert "10-s realized volatility 4.00 bps is 2.0x" in live_html.microstructure(features, settings)
