"""The API served by uvicorn on a loopback port, against a store filled by replaying simulated recordings (two
instruments on two venues, one of them with predictions) through the flow: every endpoint's answer checked
against the store's readers.

The helpers and fixtures here are shared by the other tests/test_api_*.py modules (the fixture functions
are named *_fixture, so that importing them does not shadow the fixture names the tests take)."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pipeline_runs import MODEL_HORIZONS, replay

from api.app import create_app
from api.settings import ApiSettings
from operators.arbitrage import ArbitrageRules, Quote, find_opportunities
from quantumflow.features import FEATURE_NAMES
from simulator import simulate
from store import open_store

HORIZONS = MODEL_HORIZONS
PREDICTED = ("binance:ETHUSDT", "coinbase:ETH-USD")  # the instruments the flow predicted for
SETTINGS = ApiSettings(rate_limit=None)


@contextmanager
def serve(settings: ApiSettings, app: FastAPI | None = None) -> Iterator[str]:
    """The app for ``settings`` (or ``app``) served by uvicorn in a thread on a free loopback port; yields its
    base URL."""
    config = uvicorn.Config(app or create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def client(settings: ApiSettings) -> Iterator[httpx.Client]:
    with serve(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


def once(folder: Path, build: Callable[[], None]) -> None:
    """Build into ``folder`` once a session: the modules that import a session fixture from here get
    fixture definitions of their own, and the second finds the first's work done."""
    if not (folder / "ready").exists():
        build()
        (folder / "ready").touch()


@pytest.fixture(scope="session", name="trained_models")
def trained_models_fixture(simulated_models) -> Path:
    """The session's small models (horizons 10 and 1s): enough to serve and predict with, not to be right."""
    return simulated_models.folder


@pytest.fixture(scope="session", name="flow_store")
def flow_store_fixture(simulated_recording, simulated_models, tmp_path_factory) -> str:
    """A simulated minute of BTC and one of ETH, each on Binance and Coinbase, replayed through the flow into
    SQLite without models; then the ETH minute again with the trained models, so that the flow writes
    predictions for its two instruments."""
    folder = tmp_path_factory.getbasetemp() / "api_store"
    url = f"sqlite:///{folder / 'flow.db'}"

    def fill() -> None:
        simulate(folder / "eth", seed=3, minutes=1, symbol="ETHUSDT", price=3000.0)
        with pytest.MonkeyPatch.context() as env:
            env.setenv("QF_MODELS_DIR", str(folder / "no_models"))  # whatever a developer trained in data/ stays out
            replay([simulated_recording, folder / "eth"], url, online_state=folder / "online_state")
        replay([folder / "eth"], url, models=simulated_models.folder, online_state=folder / "online_state", fresh=True)

    once(folder, fill)
    return url


@pytest.fixture(scope="session", name="api")
def api_fixture(flow_store) -> Iterator[httpx.Client]:
    with client(replace(SETTINGS, store_url=flow_store)) as http:
        yield http


@pytest.fixture(scope="session", name="reader")
def reader_fixture(flow_store):
    with open_store(flow_store).reader() as r:
        yield r


def path(instrument: str) -> str:
    return quote(instrument, safe=":/")


def pages(api: httpx.Client, url: str, params: dict, limit: int) -> list[dict]:
    """Every row of a paged answer, following next_offset."""
    rows, offset = [], 0
    while offset is not None:
        answer = api.get(url, params={**params, "limit": limit, "offset": offset})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        rows += body["rows"]
        assert body["next_offset"] is None or body["next_offset"] == offset + limit
        offset = body["next_offset"]
    return rows


def same(a, b) -> bool:
    """Equal, with a store's NaN or infinity shown as JSON null."""
    if isinstance(b, float) and not math.isfinite(b):
        return a is None
    return a == b


# -- instruments, books, features ----------------------------------------------------------------


def test_instruments_are_the_stores(api, reader):
    answer = api.get("/v1/instruments")
    assert answer.status_code == 200
    assert answer.json() == {"instruments": reader.instruments()}
    assert reader.instruments() == ["binance:BTCUSDT", "binance:ETHUSDT", "coinbase:BTC-USD", "coinbase:ETH-USD"]


def test_each_instruments_book_is_its_latest_stored_book(api, reader):
    for instrument in reader.instruments():
        row = reader.latest("book", instrument)
        for levels in (1, 10):
            answer = api.get(f"/v1/book/{path(instrument)}", params={"levels": levels})
            assert answer.status_code == 200, (instrument, answer.text)
            book = answer.json()
            assert {k: book[k] for k in ("instrument", "ts", "seq", "exchange_ts", "update_id")} == {
                k: row[k] for k in ("instrument", "ts", "seq", "exchange_ts", "update_id")
            }
            for side in ("bid", "ask"):
                stored = [
                    [row[f"{side}_price_{k}"], row[f"{side}_size_{k}"]]
                    for k in range(1, levels + 1)
                    if row[f"{side}_price_{k}"] is not None
                ]
                assert book[f"{side}s"] == stored
            assert book["bids"][0][0] < book["asks"][0][0]


def test_latest_features_with_all_or_chosen_names(api, reader):
    for instrument in reader.instruments():
        row = reader.latest("features", instrument)
        body = api.get(f"/v1/features/{path(instrument)}").json()
        assert body["features"] == list(FEATURE_NAMES) and body["next_offset"] is None
        [got] = body["rows"]
        assert (got["ts"], got["seq"], got["exchange_ts"]) == (row["ts"], row["seq"], row["exchange_ts"])
        assert all(same(got["values"][name], row[name]) for name in FEATURE_NAMES), instrument
    chosen = api.get(
        "/v1/features/binance:BTCUSDT", params=[("features", "spread_bps,mid"), ("features", "ofi_1_1s")]
    ).json()
    assert chosen["features"] == ["mid", "spread_bps", "ofi_1_1s"]  # registry order
    row = reader.latest("features", "binance:BTCUSDT", ["mid", "spread_bps", "ofi_1_1s"])
    assert chosen["rows"][0]["values"] == {k: row[k] for k in chosen["features"]}


def test_a_feature_time_range_read_page_by_page_is_the_stores(api, reader):
    instrument = "binance:BTCUSDT"
    first = reader.range("features", instrument, 0, 2**63 - 1, [], limit=1)[0]["ts"]
    start, end = first + 10**9, first + 20 * 10**9
    stored = reader.range("features", instrument, start, end, ["mid", "spread"], limit=100_000)
    assert 500 < len(stored) < 10_000
    rows = pages(api, f"/v1/features/{instrument}", {"start": start, "end": end, "features": "mid,spread"}, 700)
    assert [(r["ts"], r["seq"], r["values"]["mid"], r["values"]["spread"]) for r in rows] == [
        (s["ts"], s["seq"], s["mid"], s["spread"]) for s in stored
    ]
    since = pages(api, f"/v1/features/{instrument}", {"start": end, "features": "mid"}, 1_000)  # no end: to the last
    before = reader.range("features", instrument, 0, end, [], limit=100_000)
    assert len(since) == reader.count("features", instrument) - len(before) > 3_000
    empty = api.get(f"/v1/features/{instrument}", params={"start": 1, "end": 2})
    assert empty.status_code == 200 and empty.json()["rows"] == []


# -- predictions ---------------------------------------------------------------------------------


def stored_as_shown(row: dict) -> dict:
    """A predictions row as the API shows it: its JSON columns decoded, without the instrument."""
    shown = {k: v for k, v in row.items() if k not in ("instrument", "model_probs", "model_weights")}
    return {**shown, "models": json.loads(row["model_probs"]), "weights": json.loads(row["model_weights"])}


def test_latest_predictions_are_the_stores(api, reader):
    for instrument in PREDICTED:
        stored = reader.latest_predictions(instrument)
        body = api.get(f"/v1/predictions/{instrument}/latest").json()
        assert body["instrument"] == instrument
        assert [p["horizon"] for p in body["predictions"]] == list(HORIZONS)
        assert body["predictions"] == [stored_as_shown(row) for row in stored]
        assert {"bayes", "lstm"} <= set(body["predictions"][0]["models"])  # the trained ensemble's members
    one = api.get(f"/v1/predictions/{PREDICTED[0]}/latest", params={"horizon": "1s"}).json()
    assert [p["horizon"] for p in one["predictions"]] == ["1s"]
    none_yet = api.get("/v1/predictions/binance:BTCUSDT/latest")
    assert none_yet.status_code == 200 and none_yet.json() == {"instrument": "binance:BTCUSDT", "predictions": []}


def test_a_prediction_time_range_by_horizon_read_page_by_page_is_the_stores(api, reader):
    instrument = PREDICTED[0]
    everything = reader.prediction_range(instrument, 0, 2**63 - 1, limit=100_000)
    start, end = everything[100]["ts"], everything[-100]["ts"]
    for horizons in (None, ["10"]):
        stored = reader.prediction_range(instrument, start, end, horizons, limit=100_000)
        params = {"start": start, "end": end, **({"horizon": horizons} if horizons else {})}
        rows = pages(api, f"/v1/predictions/{instrument}", params, 500)
        assert len(rows) == len(stored) > 1000
        assert rows == [stored_as_shown(row) for row in stored]
    matured = [r for r in everything if r["label"] is not None]
    assert 0 < len(matured) < len(everything)


# -- arbitrage, health, metrics ------------------------------------------------------------------


def test_arbitrage_is_the_operator_on_the_stores_latest_books(api, reader):
    body = api.get("/v1/arbitrage").json()
    tops = reader.latest_per_instrument("book", ["bid_price_1", "bid_size_1", "ask_price_1", "ask_size_1"])
    quotes = [Quote(r["instrument"], r["ts"], *list(r.values())[3:]) for r in tops]
    expected = find_opportunities(quotes, body["ts"], ArbitrageRules())
    assert body["opportunities"] == [asdict(o) for o in expected]
    markets = {m["asset"]: [q["instrument"] for q in m["quotes"]] for m in body["markets"]}
    assert markets["ETH/USD"] == ["binance:ETHUSDT", "coinbase:ETH-USD"]  # the simulated venues, stablecoin at par
    assert markets == {"BTC/USD": ["binance:BTCUSDT", "coinbase:BTC-USD"], "ETH/USD": markets["ETH/USD"]}
    eth = {q["instrument"]: q for m in body["markets"] for q in m["quotes"] if m["asset"] == "ETH/USD"}
    stored = reader.latest("book", "coinbase:ETH-USD")
    assert eth["coinbase:ETH-USD"]["ask_price"] == stored["ask_price_1"]
    assert eth["coinbase:ETH-USD"]["age_ms"] == (body["ts"] - stored["ts"]) / 1e6
    assert body["taker_fees_bps"] == {"binance": 10.0, "coinbase": 60.0, "kraken": 40.0}


def test_a_crossing_written_to_a_store_is_an_opportunity(tmp_path):
    """Two venues' books, the Coinbase bid above the Binance ask: buy Binance, sell Coinbase."""
    url = f"sqlite:///{tmp_path / 'cross.db'}"
    now = time.time_ns()

    def book(instrument, ts, bid, bid_size, ask, ask_size):
        nan = [math.nan] * 9
        return (instrument, ts, 1, None, None, bid, *nan, bid_size, *nan, ask, *nan, ask_size, *nan)

    with open_store(url).writer() as writer:
        writer.write(
            "book",
            [
                book("binance:BTCUSDT", now - 2 * 10**9, 60_000.0, 1.0, 60_001.0, 0.5),
                book("coinbase:BTC-USD", now - 10**9, 60_100.0, 0.2, 60_101.0, 0.3),
                book("binance_usdm:BTCUSDT", now, 59_000.0, 1.0, 59_001.0, 1.0),  # futures: never compared
            ],
        )
    rules = ArbitrageRules({"binance": 1.0, "coinbase": 2.0})
    with client(replace(SETTINGS, store_url=url, arbitrage=rules)) as http:
        body = http.get("/v1/arbitrage").json()
        [o] = body["opportunities"]
        assert (o["buy_instrument"], o["sell_instrument"], o["size"]) == ("binance:BTCUSDT", "coinbase:BTC-USD", 0.2)
        assert o["net_bps"] == pytest.approx(1e4 * 80.9799 / 60_001)  # as in tests/test_arbitrage.py
        assert o["buy_quote_age_ms"] == (body["ts"] - (now - 2 * 10**9)) / 1e6 >= 2_000  # aged from the answer's time
        assert o["sell_quote_age_ms"] == (body["ts"] - (now - 10**9)) / 1e6 >= 1_000
        assert http.get("/v1/arbitrage", params={"min_net_bps": 14}).json()["opportunities"] == []
        assert http.get("/v1/arbitrage", params={"max_age_ms": 1_500}).json()["opportunities"] == []


def test_health_gives_each_instruments_last_event_age(api, reader, flow_store):
    before = time.time_ns()
    body = api.get("/health").json()
    after = time.time_ns()
    assert body["store"] == flow_store
    stale = [i["instrument"] for i in body["instruments"] if i["stale"]]  # older than QF_API_STALE_AFTER_S
    assert body["status"] == ("degraded" if stale else "ok") and all(i in (body["detail"] or "") for i in stale)
    ages = {i["instrument"]: i for i in body["instruments"]}
    assert sorted(ages) == reader.instruments()
    for instrument, item in ages.items():
        last = max(
            row["ts"] for table in ("features", "trades") if (row := reader.latest(table, instrument, [])) is not None
        )
        assert item["last_event_ts"] == last
        assert (before - last) / 1e9 <= item["age_s"] <= (after - last) / 1e9  # its age when the answer was made
        assert item["stale"] == (item["age_s"] > 60)


def test_metrics_count_requests_and_show_the_flows_progress(api, reader):
    [run] = reader.latest_run_metrics()
    api.get("/v1/book/binance:BTCUSDT")
    api.get("/v1/book/nowhere:X")
    text = api.get("/metrics").text
    counted = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if not line.startswith("#")
    }
    book_ok = 'qf_api_requests_total{route="/v1/book/{instrument:path}",method="GET",status="200"}'
    assert counted[book_ok] >= 1
    assert counted['qf_api_requests_total{route="/v1/book/{instrument:path}",method="GET",status="404"}'] >= 1
    histogram = 'qf_api_request_duration_seconds_count{route="/v1/book/{instrument:path}",method="GET"}'
    assert counted[histogram] >= counted[book_ok] + 1
    labels = f'run_id="{run["run_id"]}",worker="0"'
    assert counted[f"qf_flow_events_in_total{{{labels}}}"] == run["events_in"] > 5_000  # the ETH run, the latest
    assert counted[f'qf_flow_lag_seconds{{{labels},quantile="0.99"}}'] == pytest.approx(run["lag_p99_ms"] / 1e3)
    assert counted["qf_store_dead_letters"] == reader.count("dead_letters")
    assert counted["qf_store_up"] == 1


# -- volatility ----------------------------------------------------------------------------------


def test_volatility_latest_and_history_are_the_stores(api, reader):
    instrument = "binance:BTCUSDT"
    latest = api.get(f"/v1/volatility/{instrument}").json()
    shown = [{k: v for k, v in row.items() if k != "instrument"} for row in reader.latest_vol_forecasts(instrument)]
    assert latest == {"instrument": instrument, "forecasts": shown}
    assert len(latest["forecasts"]) == 6  # two horizons, three models
    stored = reader.vol_forecast_range(instrument, 0, 2**63 - 1, ["10s"], limit=50)
    page = api.get(f"/v1/volatility/{instrument}/history", params={"horizon": "10s", "limit": 50}).json()
    assert page["rows"] == [{k: v for k, v in row.items() if k != "instrument"} for row in stored]
    assert page["next_offset"] == 50
    assert any(row["realized"] is not None for row in page["rows"])
    assert api.get("/v1/volatility/nowhere:XYZ").status_code == 404
    assert api.get(f"/v1/volatility/{instrument}/history", params={"horizon": "5m"}).status_code == 422
