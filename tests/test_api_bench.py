"""The API load benchmark, briefly: a server process, open-loop load from this one, figures that add up."""

from __future__ import annotations

import math

import pytest
from test_api import flow_store_fixture  # noqa: F401 (fixture)

from api.bench import PLACEHOLDER_HORIZONS, prepare_predictions, run_api_bench
from store import open_store


def test_a_short_run_at_a_low_rate_answers_everything(flow_store):
    result = run_api_bench(rate=100, duration_s=1.0, warmup_s=0.5, store_url=flow_store)
    assert result.instrument == "binance:BTCUSDT" and result.predictions == "stored"
    book, latest, total = (
        next(f for f in result.endpoints if word in f.endpoint) for word in ("book", "latest", "all")
    )
    assert (book.sent, latest.sent, total.sent) == (50, 50, 100)  # the requests due after the warm-up
    assert total.ok == 100 and total.errors == 0 and result.error_kinds == {}
    assert 0 < total.p50_ms <= total.p90_ms <= total.p99_ms <= total.p999_ms <= total.max_ms < 1000
    assert 80 <= result.throughput <= 101 and 0 < result.server_cpu < 2 and result.connections >= 1


def test_a_store_without_predictions_gets_placeholder_rows(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    nan = [math.nan] * 63
    with open_store(url).writer() as writer:
        writer.write("features", [("coinbase:BTC-USD", 10 * k, k, None, None, *nan) for k in range(5)])
        writer.write("trades", [("binance:BTCUSDT", 10, 1, None, "t", 1.0, 1.0, 1)])
    with pytest.raises(ValueError, match="has no book rows; replay a recording into it first"):
        prepare_predictions(url)
    with open_store(url).writer() as writer:
        writer.write("book", [("coinbase:BTC-USD", 40, 4, None, None, *[1.0] * 40)])
    instrument, where = prepare_predictions(url)
    assert (instrument, where) == ("coinbase:BTC-USD", "placeholders (10 rows written: the store had none)")
    with open_store(url).reader() as reader:
        latest = reader.latest_predictions(instrument)
    assert [(p["seq"], p["horizon"]) for p in latest] == [(4, h) for h in sorted(PLACEHOLDER_HORIZONS)]
