"""The API load benchmark, briefly: a server process, open-loop load from this one, figures that add up."""

from __future__ import annotations

import math
import sqlite3

import pytest
from test_api import flow_store_fixture  # noqa: F401 (fixture)

from api.bench import PLACEHOLDER_HORIZONS, prepare_predictions, run_api_bench
from store import open_store


def test_a_short_run_at_a_low_rate_answers_everything(flow_store, tmp_path):
    copy = tmp_path / "bench.db"  # the benchmark may write placeholder predictions: not into the shared store
    with sqlite3.connect(flow_store.removeprefix("sqlite:///")) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    url = f"sqlite:///{copy}"
    result = run_api_bench(rate=100, duration_s=1.0, warmup_s=0.5, store_url=url)
    with open_store(url).reader() as reader:
        events = reader.count("features", "binance:BTCUSDT")
        latest = reader.latest_predictions("binance:BTCUSDT")
    assert result.instrument == "binance:BTCUSDT"  # the most book rows; the flow predicted only for ETH here
    assert result.predictions == f"placeholders ({2 * events:,} rows written: the store had none)"
    assert [p["horizon"] for p in latest] == sorted(PLACEHOLDER_HORIZONS)
    book, newest, total = (
        next(f for f in result.endpoints if word in f.endpoint) for word in ("book", "latest", "all")
    )
    assert (book.sent, newest.sent, total.sent) == (50, 50, 100)  # the requests due after the warm-up
    assert total.ok == 100 and total.errors == 0 and result.error_kinds == {}
    assert 0 < total.p50_ms <= total.p90_ms <= total.p99_ms <= total.p999_ms <= total.max_ms < 1000
    assert 80 <= result.throughput <= 101 and 0 < result.server_cpu < 2 and result.connections >= 1


def test_a_store_without_books_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    with open_store(url).writer() as writer:
        writer.write("features", [("coinbase:BTC-USD", 10, 1, None, None, *[math.nan] * 63)])
    with pytest.raises(ValueError, match="has no book rows; replay a recording into it first"):
        prepare_predictions(url)
