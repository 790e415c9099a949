"""The API served by uvicorn on a loopback port, against a store filled by replaying real recordings (and a
simulated two-venue one) through the flow: every endpoint's answer checked against the store's readers.

The helpers and fixtures here are shared by the other tests/test_api_*.py modules (the fixture functions
are named *_fixture, so that importing them does not shadow the fixture names the tests take)."""

from __future__ import annotations

import gzip
import itertools
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

from api.app import create_app
from api.settings import ApiSettings
from dataflows.run import run_flow
from dataflows.run_settings import RunSettings
from dataflows.training import run_experiment
from models.train import Settings
from operators.arbitrage import ArbitrageRules, Quote, find_opportunities
from operators.labels import parse_horizons
from quantumflow.features import FEATURE_NAMES
from simulator import simulate
from store import open_store

HORIZONS = ("10", "1s")
PREDICTED = ("binance:ETHUSDT", "coinbase:ETH-USD")  # the instruments the flow predicted for
SETTINGS = ApiSettings(rate_limit=None)


@contextmanager
def serve(settings: ApiSettings) -> Iterator[str]:
    """The app for ``settings`` served by uvicorn in a thread on a free loopback port; yields its base URL."""
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on")
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


def tiny_models(base: Path, shared_data: Path) -> Path:
    """Tiny models (one epoch, horizons 10 and 1s) trained on the first 8,000 messages of the Binance
    spot recording, once a session: enough to serve and predict with, not to be right."""
    folder = base / "api_models"

    def train() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        cut = folder / "spot_cut.gz"
        with gzip.open(shared_data / "binance" / "spot_btcusdt_20240808.gz", "rb") as full, gzip.open(cut, "wb") as out:
            out.writelines(itertools.islice(full, 8_000))
        settings = Settings(parse_horizons(",".join(HORIZONS)), window=8, epochs=1, max_train_windows=1_000)
        run_experiment([cut], settings, folder / "report", save_models=folder, say=lambda _: None)

    once(folder, train)
    return folder


@pytest.fixture(scope="session", name="trained_models")
def trained_models_fixture(shared_data, tmp_path_factory) -> Path:
    return tiny_models(tmp_path_factory.getbasetemp(), shared_data)


@pytest.fixture(scope="session", name="flow_store")
def flow_store_fixture(shared_data, tmp_path_factory) -> str:
    """Binance spot BTCUSDT, Coinbase (10 products), Kraken (10 pairs) and one simulated minute of ETH on
    Binance and Coinbase, replayed through the flow into SQLite without models; then the ETH minute again
    with the trained models, so that the flow writes predictions for its two instruments."""
    folder = tmp_path_factory.getbasetemp() / "api_store"
    url = f"sqlite:///{folder / 'flow.db'}"

    def fill() -> None:
        simulate(folder / "eth", seed=3, minutes=1, symbol="ETHUSDT", price=3000.0)
        recordings = [
            shared_data / "binance" / "spot_btcusdt_20240808.gz",
            shared_data / "coinbase" / "COINBASE.ws.28.0",
            shared_data / "kraken" / "KRAKEN.ws.50.0",
            folder / "eth",
        ]
        with pytest.MonkeyPatch.context() as env:
            env.setenv("QF_MODELS_DIR", str(folder / "no_models"))  # whatever a developer trained in data/ stays out
            run_flow(RunSettings(tuple(recordings), store=url, online_state_dir=folder / "online_state"))
        models = tiny_models(tmp_path_factory.getbasetemp(), shared_data)
        run_flow(
            RunSettings(
                (folder / "eth",), store=url, models=models, online_state_dir=folder / "online_state", fresh=True
            )
        )

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
    assert len(reader.instruments()) == 23 and "kraken:XBT/CHF" in reader.instruments()


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
    for instrument in ("binance:BTCUSDT", "kraken:XBT/CHF", "coinbase:ETH-USD"):
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
    since = pages(api, f"/v1/features/{instrument}", {"start": end, "features": "mid"}, 10_000)  # no end: to the last
    before = reader.range("features", instrument, 0, end, [], limit=100_000)
    assert len(since) == reader.count("features", instrument) - len(before) > 10_000
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
    none_yet = api.get("/v1/predictions/kraken:XBT/CHF/latest")
    assert none_yet.status_code == 200 and none_yet.json() == {"instrument": "kraken:XBT/CHF", "predictions": []}


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
    assert markets["BTC/USD"] == ["binance:BTCUSDT"]
    assert "XBT/CHF" not in markets and markets["BTC/CHF"] == ["kraken:XBT/CHF"]
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
        assert 2_000 <= o["buy_quote_age_ms"] < 60_000 and 1_000 <= o["sell_quote_age_ms"] < 59_000
        assert http.get("/v1/arbitrage", params={"min_net_bps": 14}).json()["opportunities"] == []
        assert http.get("/v1/arbitrage", params={"max_age_ms": 1_500}).json()["opportunities"] == []


def test_health_gives_each_instruments_last_event_age(api, reader, flow_store):
    before = time.time_ns()
    body = api.get("/health").json()
    assert body["status"] == "ok" and body["detail"] is None and body["store"] == flow_store
    ages = {i["instrument"]: i for i in body["instruments"]}
    assert sorted(ages) == reader.instruments()
    for instrument, item in ages.items():
        last = max(
            row["ts"] for table in ("features", "trades") if (row := reader.latest(table, instrument, [])) is not None
        )
        assert item["last_event_ts"] == last
        assert (before - last) / 1e9 <= item["age_s"] < (before - last) / 1e9 + 60


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
