"""GET /v1/backtests and /v1/backtests/{id}, served by uvicorn as in tests/test_api.py, over a SQLite store
holding backtest results built by hand and saved by backtest.storage."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from backtest_results import T0, S, small_result
from test_api import SETTINGS, client

from backtest.storage import save

HEADLINE = ("net_pnl", "trades", "sharpe", "win_rate", "max_drawdown", "profit_factor")


@pytest.fixture(scope="module")
def results():
    return [
        small_result("a", T0 + 1 * S),
        small_result("b", T0 + 3 * S, strategy="market-maker", instrument="coinbase:BTC-USD", sharpe=math.nan),
        small_result("c", T0 + 2 * S),
    ]


@pytest.fixture(scope="module")
def api(results, tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('backtests') / 'store.db'}"
    for result in results:
        save(result, url)
    with client(replace(SETTINGS, store_url=url)) as http:
        yield http


def test_the_list_is_newest_first_with_the_headline_metrics(api, results):
    answer = api.get("/v1/backtests")
    assert answer.status_code == 200
    listed = answer.json()["backtests"]
    assert [b["id"] for b in listed] == ["b", "c", "a"]
    a = results[0]
    assert listed[2] == {
        "id": "a",
        "created": a.created_ns,
        "strategy": "follow",
        "instrument": "binance:BTCUSDT",
        "start_ns": a.start_ns,
        "end_ns": a.end_ns,
        **{name: (a.metrics[name] if math.isfinite(a.metrics[name]) else None) for name in HEADLINE},
    }
    assert listed[0]["sharpe"] is None and listed[0]["profit_factor"] is None  # undefined: null


@pytest.mark.parametrize(
    ("params", "ids"),
    [
        ({"limit": 2}, ["b", "c"]),
        ({"strategy": "follow"}, ["c", "a"]),
        ({"instrument": "coinbase:BTC-USD"}, ["b"]),
        ({"strategy": "follow", "instrument": "coinbase:BTC-USD"}, []),
        ({"strategy": "execution"}, []),
    ],
)
def test_the_list_filters(api, params, ids):
    answer = api.get("/v1/backtests", params=params)
    assert answer.status_code == 200 and [b["id"] for b in answer.json()["backtests"]] == ids


def test_one_backtest_is_everything_stored(api, results):
    answer = api.get("/v1/backtests/a")
    assert answer.status_code == 200
    body, a = answer.json(), results[0]
    assert body["created"] == a.created_ns and body["recordings"] == a.recordings
    assert body["settings"] == {**a.settings, "threshold": 0.6}
    assert body["metrics"] == {k: v if math.isfinite(v) else None for k, v in a.metrics.items()}
    assert body["benchmarks"] == a.benchmarks
    assert {name: body[name] for name in HEADLINE} == {name: body["metrics"][name] for name in HEADLINE}


def test_an_unknown_backtest_is_a_404_saying_where_to_look(api):
    answer = api.get("/v1/backtests/nope")
    assert answer.status_code == 404
    assert answer.json() == {"detail": "no backtest 'nope' is stored: GET /v1/backtests lists those there are"}


@pytest.mark.parametrize(
    ("url", "where", "message"),
    [
        ("/v1/backtests?limit=0", ["query", "limit"], "greater than or equal to 1"),
        ("/v1/backtests?limit=1001", ["query", "limit"], "less than or equal to 1000"),
        ("/v1/backtests?limit=ten", ["query", "limit"], "valid integer"),
        ("/v1/backtests?instrument=BTCUSDT", ["query", "instrument"], "should match pattern"),
        ("/v1/backtests?strategy=", ["query", "strategy"], "should match pattern"),
        ("/v1/backtests?strategy=a%20b", ["query", "strategy"], "should match pattern"),
        (f"/v1/backtests/{'x' * 201}", ["path", "id"], "at most 200 characters"),
    ],
)
def test_bad_parameters_are_a_422_saying_why(api, url, where, message):
    answer = api.get(url)
    assert answer.status_code == 422
    [error] = answer.json()["detail"]
    assert error["loc"] == where and message in error["msg"]


def test_an_empty_store_lists_none_and_knows_none(tmp_path):
    with client(replace(SETTINGS, store_url=f"sqlite:///{tmp_path / 'empty.db'}")) as http:
        assert http.get("/v1/backtests").json() == {"backtests": []}
        assert http.get("/v1/backtests/a").status_code == 404
