"""The kept latest-prediction and book answers: the routes' own answers, served from memory once kept,
following the store as it is written, never keeping an error; and the settings that govern them."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace

import httpx
import pytest
from test_api import SETTINGS, client, flow_store_fixture, serve  # noqa: F401 (fixture)

from api.app import create_app
from api.latest_answers import LatestAnswers, Question, question_of
from api.settings import ApiSettings
from store import TABLES, open_store

ETH = "binance:ETHUSDT"
TARGETS = (
    f"/v1/predictions/{ETH}/latest",
    f"/v1/predictions/{ETH}/latest?horizon=1s",
    f"/v1/predictions/{ETH}/latest?horizon=1s&horizon=10",
    "/v1/predictions/coinbase:ETH-USD/latest",
    "/v1/book/binance:BTCUSDT",
    "/v1/book/binance:BTCUSDT?levels=3",
    "/v1/book/coinbase:ETH-USD?levels=10",
)


def kept_body(kept: LatestAnswers, target: str) -> bytes | None:
    path, _, query = target.partition("?")
    answer = kept.answers.get(question_of(path, query.encode()))
    return answer.body if answer is not None and answer.route is not None else None


def wait_until(condition, what: str, within_s: float = 20.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_kept_answers_are_the_routes_own_and_counted_as_theirs(flow_store):
    app = create_app(replace(SETTINGS, store_url=flow_store, refresh_s=0.05))
    kept = app.state.latest_answers
    with (
        serve(SETTINGS, app) as url,
        httpx.Client(base_url=url) as fast,
        client(replace(SETTINGS, store_url=flow_store, refresh_s=None)) as plain,
    ):
        for target in TARGETS:
            first = fast.get(target)
            assert first.status_code == 200
            wait_until(lambda target=target: kept_body(kept, target) is not None, f"{target} was never kept")
            again = fast.get(target)
            assert again.status_code == 200 and again.headers["content-type"] == "application/json"
            assert again.json() == first.json() == plain.get(target).json()
            assert kept_body(kept, target) == again.content
        metrics = fast.get("/metrics").text
    books = sum("/book/" in t for t in TARGETS)
    route = 'route="/v1/book/{instrument:path}",method="GET",status="200"'
    assert f"qf_api_requests_total{{{route}}} {2 * books}" in metrics


def test_a_kept_answer_follows_the_store(flow_store, tmp_path):
    copy = tmp_path / "kept.db"
    with sqlite3.connect(flow_store.removeprefix("sqlite:///")) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    url = f"sqlite:///{copy}"
    app = create_app(replace(SETTINGS, store_url=url, refresh_s=0.05))
    target = "/v1/book/binance:BTCUSDT?levels=2"
    with serve(SETTINGS, app) as base, httpx.Client(base_url=base) as http:
        before = http.get(target).json()
        wait_until(lambda: kept_body(app.state.latest_answers, target) is not None, "the book was never kept")
        store = open_store(url)
        with store.reader() as reader:
            row = reader.latest("book", "binance:BTCUSDT")
        newer = {**row, "ts": row["ts"] + 1, "seq": row["seq"] + 1, "bid_price_1": row["bid_price_1"] - 0.5}
        with store.writer() as writer:
            writer.write("book", [tuple(newer[name] for name in TABLES["book"].names)])
        wait_until(lambda: http.get(target).json()["ts"] == newer["ts"], "the kept book never showed the new row")
        after = http.get(target).json()
    assert after["seq"] == before["seq"] + 1 and after["bids"][0][0] == before["bids"][0][0] - 0.5
    assert after["asks"] == before["asks"]


def test_an_error_is_never_kept(flow_store):
    app = create_app(replace(SETTINGS, store_url=flow_store, refresh_s=0.05))
    kept = app.state.latest_answers
    with serve(SETTINGS, app) as base, httpx.Client(base_url=base) as http:
        for target in ("/v1/book/nowhere:X", f"/v1/predictions/{ETH}/latest?horizon=7"):
            first = http.get(target)
            question = question_of(target.partition("?")[0], target.partition("?")[2].encode())
            wait_until(lambda q=question: kept.answers[q].route is not None, "the app never answered")
            time.sleep(0.2)  # refreshes run meanwhile, each failing to build it
            assert kept.answers[question].body is None
            again = http.get(target)
            assert again.status_code == first.status_code in (404, 422) and again.json() == first.json()


def test_the_requests_it_answers():
    assert question_of("/v1/book/kraken:XBT/USD", b"") == Question("book", "kraken:XBT/USD", 10)
    assert question_of("/v1/book/binance:BTCUSDT", b"levels=4") == Question("book", "binance:BTCUSDT", 4)
    assert question_of("/v1/predictions/a:B/latest", b"horizon=1s&horizon=10") == Question(
        "predictions", "a:B", ("1s", "10")
    )
    assert question_of("/v1/predictions/a:B/latest", b"") == Question("predictions", "a:B", None)
    # what the app validates or reads otherwise goes on to it
    for path, query in (
        ("/v1/book/a:B", b"levels=11"),
        ("/v1/book/a:B", b"levels=0"),
        ("/v1/book/a:B", b"levels=x"),
        ("/v1/book/a:B", b"levels=1&levels=2"),
        ("/v1/book/a:B", b"depth=3"),
        ("/v1/book/", b""),
        ("/v1/predictions/a:B/latest", b"horizon="),
        ("/v1/predictions/a:B/latest", b"horizon=" + b"x" * 33),
        ("/v1/predictions/a:B/latest", b"limit=3"),
        ("/v1/predictions//latest", b""),
        ("/v1/predictions/a:B", b""),
        ("/v1/features/a:B", b""),
    ):
        assert question_of(path, query) is None, (path, query)


def test_the_settings():
    assert ApiSettings.from_env({}).refresh_s == 0.1
    assert ApiSettings.from_env({"QF_API_REFRESH_S": "off"}).refresh_s is None
    assert ApiSettings.from_env({"QF_API_REFRESH_S": "0.5"}).refresh_s == 0.5
    assert ApiSettings.from_env({"QF_API_WORKERS": "3"}).workers == 3
    assert ApiSettings.from_env({}).workers >= 1
    with pytest.raises(ValueError, match="QF_API_REFRESH_S='soon'"):
        ApiSettings.from_env({"QF_API_REFRESH_S": "soon"})
    with pytest.raises(ValueError, match="QF_API_WORKERS='0': expected a whole number from 1 to 64"):
        ApiSettings.from_env({"QF_API_WORKERS": "0"})
