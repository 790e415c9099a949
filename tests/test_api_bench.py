"""The API load benchmark, briefly: a server process, open-loop load from this one, figures that add up."""

from __future__ import annotations

import json
import math
import sqlite3

import pytest
from test_api import flow_store_fixture  # noqa: F401 (fixture)

from bench.api import PLACEHOLDER_HORIZONS, prepare_predictions, run_api_bench, search_api_rate
from store import open_store


def test_a_short_run_answers_every_request_it_sends(flow_store, tmp_path):
    copy = tmp_path / "bench.db"
    with sqlite3.connect(flow_store.removeprefix("sqlite:///")) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    url = f"sqlite:///{copy}"
    with open_store(url).writer() as writer:  # what a flow with models writes for the busiest instrument
        writer.write("predictions", [_prediction("binance:BTCUSDT", ts, horizon) for ts in (1, 2) for horizon in "ab"])
    result = run_api_bench(rate=100, duration_s=1.0, warmup_s=0.5, store_url=url)
    assert result.instrument == "binance:BTCUSDT" and result.predictions == "stored"
    book, newest, total = (
        next(f for f in result.endpoints if word in f.endpoint) for word in ("book", "latest", "all")
    )
    assert book.sent + newest.sent == total.sent > 0 and abs(book.sent - newest.sent) <= 1  # they alternate
    assert total.ok == total.sent and total.errors == 0 and result.error_kinds == {}
    assert 0 < total.p50_ms <= total.p90_ms <= total.p99_ms <= total.p999_ms <= total.max_ms


def test_a_given_store_is_only_read(flow_store, tmp_path):
    copy = tmp_path / "bench.db"
    with sqlite3.connect(flow_store.removeprefix("sqlite:///")) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    before = copy.read_bytes()
    with pytest.raises(ValueError, match="has no predictions for binance:BTCUSDT"):
        prepare_predictions(f"sqlite:///{copy}", may_write_placeholders=False)
    assert copy.read_bytes() == before


def test_its_own_store_gets_placeholder_predictions_said_plainly(flow_store, tmp_path):
    copy = tmp_path / "bench.db"
    with sqlite3.connect(flow_store.removeprefix("sqlite:///")) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    url = f"sqlite:///{copy}"
    instrument, source_of_predictions = prepare_predictions(url, may_write_placeholders=True)
    with open_store(url).reader() as reader:
        events = reader.count("features", instrument)
        latest = reader.latest_predictions(instrument)
    assert source_of_predictions == f"placeholders ({2 * events:,} rows written: the store had none)"
    assert sorted(p["horizon"] for p in latest) == sorted(PLACEHOLDER_HORIZONS)


def _prediction(instrument: str, ts: int, horizon: str) -> tuple:
    probs = json.dumps({"ensemble": [0.2, 0.5, 0.3]})
    return (instrument, ts, 1, horizon, None, 0.2, 0.5, 0.3, 0, 0.5, probs, '{"ensemble": 1.0}', None, None, None)


def test_a_store_without_books_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    with open_store(url).writer() as writer:
        writer.write("features", [("coinbase:BTC-USD", 10, 1, None, None, *[math.nan] * 63)])
    with pytest.raises(ValueError, match="has no book rows; replay a recording into it first"):
        prepare_predictions(url, may_write_placeholders=False)


def test_the_search_climbs_to_the_highest_rate_that_passes(flow_store, tmp_path):
    copy = tmp_path / "bench.db"
    with sqlite3.connect(flow_store.removeprefix("sqlite:///")) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    url = f"sqlite:///{copy}"
    with open_store(url).writer() as writer:
        writer.write("predictions", [_prediction("binance:BTCUSDT", 1, "a")])
    search = search_api_rate(
        p99_ms=5_000, start_rate=40, max_rate=80, duration_s=1.0, warmup_s=0.3, store_url=url, workers=2
    )
    assert [step.rate for step in search.steps] == [40, 80] and search.best is search.steps[-1]
    assert search.best.workers == 2 and search.best.endpoints[-1].errors == 0 and search.best.server_cpu > 0
