"""The store's behaviour, the same on every backend: round trips, idempotent upserts, the readers' answers on
hand-built rows, time ranges and pages, predictions and run metrics, when writes reach the store.

Each test runs on SQLite, and on QuestDB when QF_TEST_QUESTDB names a server (see store_backends.py).
What only one backend does is tested in tests/test_store_sqlite.py and tests/test_store_questdb.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_backends import empty_store_url, open_visible
from store_rows import (
    BTC,
    ETH,
    MS,
    RAW,
    SAMPLES,
    T0,
    US,
    book_row,
    expected,
    feature_row,
    prediction_row,
    trade_row,
    vol_forecast_row,
)

from store import StoreError, digest
from store.schema import BOOK, TABLES, TRADES


@pytest.fixture
def store(store_url):
    return open_visible(store_url)


# -- round trips and upserts ---------------------------------------------------------------------


def test_every_table_round_trips(store):
    assert set(SAMPLES) == set(TABLES)
    with store.writer() as w:
        for table, rows in SAMPLES.items():
            w.write(table, rows)
    with store.reader() as r:
        for table, rows in SAMPLES.items():
            assert r.rows(table) == expected(table, rows), table
            assert r.count(table) == len(rows)
        assert r.rows("dead_letters")[0]["raw"] == RAW  # the exact bytes, not text


def test_writing_the_same_batch_twice_leaves_the_same_rows(store):
    with store.writer() as w:
        for table, rows in SAMPLES.items():
            w.write(table, rows)
            w.flush()
            w.write(table, rows)
    with store.reader() as r:
        for table, rows in SAMPLES.items():
            assert r.rows(table) == expected(table, rows)


def test_a_row_written_again_with_its_key_replaces_the_first(store):
    with store.writer() as w:
        w.write("trades", [trade_row(BTC, T0, 1, price=1.0)])
        w.flush()
        w.write("trades", [trade_row(BTC, T0, 1, price=2.0), trade_row(BTC, T0, 2)])
    with store.reader() as r:
        assert [(row["seq"], row["price"]) for row in r.rows("trades")] == [(1, 2.0), (2, 100.0)]


def test_nan_and_none_are_stored_as_null(store):
    with store.writer() as w:
        w.write("book", [book_row(BTC, T0, 1, levels=2)])
    with store.reader() as r:
        row = r.latest("book", BTC)
    assert row["bid_price_2"] == 99.0 and row["bid_price_3"] is None and row["ask_price_10"] is None
    assert row["exchange_ts"] == T0 - 5 * MS


def test_numpy_scalars_are_accepted(store):
    row = (BTC, np.int64(T0), np.int64(1), None, None, np.float64(1.5), np.float32(0.5), np.int32(1))
    with store.writer() as w:
        w.write("trades", [row])
    with store.reader() as r:
        assert r.rows("trades") == [
            {
                "instrument": BTC,
                "ts": T0,
                "seq": 1,
                "exchange_ts": None,
                "trade_id": None,
                "price": 1.5,
                "size": 0.5,
                "side": 1,
            }
        ]


# -- the readers on hand-built rows --------------------------------------------------------------


@pytest.fixture
def filled(store):
    """BTC features at T0 + k ms (k = 0..9, seq k), written newest first, then two events sharing T0 + 10 ms
    (in seq order, as the flow writes them); ETH at T0 + 3 ms."""
    ticks = [feature_row(BTC, T0 + k * MS, k, mid=100.0 + k, spread=0.1 * k) for k in range(10)]
    ties = [feature_row(BTC, T0 + 10 * MS, 10, mid=110.0), feature_row(BTC, T0 + 10 * MS, 11, mid=111.0)]
    with store.writer() as w:
        w.write("features", [feature_row(ETH, T0 + 3 * MS, 0, mid=2500.0), *ticks[::-1], *ties])
        w.write("trades", [trade_row(ETH, T0, 0)])
        w.write("dead_letters", SAMPLES["dead_letters"])
    with store.reader() as r:
        yield r


def test_instruments(filled):
    assert filled.instruments() == [BTC, ETH]


def test_latest_takes_the_greatest_time(filled):
    assert filled.latest("features", BTC, ["mid"]) == {"instrument": BTC, "ts": T0 + 10 * MS, "seq": 11, "mid": 111.0}
    assert filled.latest("features", ETH, [])["ts"] == T0 + 3 * MS
    assert filled.latest("features", "nowhere:XYZ") is None
    assert filled.latest("book", BTC) is None  # a table nothing was written to yet


def test_latest_per_instrument(filled):
    rows = filled.latest_per_instrument("features", ["mid"])
    assert [(r["instrument"], r["seq"], r["mid"]) for r in rows] == [(BTC, 11, 111.0), (ETH, 0, 2500.0)]
    assert filled.latest_per_instrument("trades")[0]["price"] == 100.0


def test_range_is_half_open_ordered_and_paged(filled):
    rows = filled.range("features", BTC, T0 + 2 * MS, T0 + 5 * MS, ["mid", "spread"])
    assert [r["seq"] for r in rows] == [2, 3, 4]
    assert list(rows[0]) == ["instrument", "ts", "seq", "mid", "spread"]
    assert [r["seq"] for r in filled.range("features", BTC, T0 + 2 * MS, T0 + 2 * MS + 1)] == [2]
    everything = filled.range("features", BTC, 0, 2**63 - 1)
    assert [r["seq"] for r in everything] == [*range(10), 10, 11]  # (ts, seq) order, whatever the write order
    page = filled.range("features", BTC, 0, 2**63 - 1, ["mid"], limit=3, offset=4)
    assert [r["seq"] for r in page] == [4, 5, 6]
    assert [r["seq"] for r in filled.range("features", BTC, 0, 2**63 - 1, [], limit=5, offset=10)] == [10, 11]
    assert filled.range("features", BTC, 0, 2**63 - 1, limit=0) == []
    assert filled.range("features", BTC, T0 + 20 * MS, 2**63 - 1) == []


def test_downsample_keeps_each_buckets_last_row(filled):
    bucket = 4 * MS
    origin = T0 - T0 % bucket
    rows = filled.downsample("features", BTC, ["mid", "micro_price"], T0, T0 + 11 * MS, bucket)
    # The bucket start is a multiple of bucket_ns; the last row is the greatest (ts, seq) in it, its nulls included.
    assert [r["ts"] for r in rows] == [origin + k * bucket for k in range(len(rows))]
    last_in = {}
    for k, mid in [*((k, 100.0 + k) for k in range(10)), (10, 110.0), (10, 111.0)]:
        last_in[(T0 + k * MS - origin) // bucket] = mid
    assert [r["mid"] for r in rows] == list(last_in.values())
    assert all(r["micro_price"] is None for r in rows)
    assert filled.downsample("features", BTC, ["mid"], T0 + MS, T0 + 2 * MS, US) == [{"ts": T0 + MS, "mid": 101.0}]


def test_count(filled):
    assert filled.count("features") == 13
    assert filled.count("features", BTC) == 12
    assert filled.count("trades", BTC) == 0


def test_dead_letters_newest_first(filled):
    letters = filled.dead_letters()
    assert [d["feed"] for d in letters] == ["kraken", "binance"]
    assert letters[1]["raw"] == RAW and letters[1]["digest"] == digest(RAW)
    assert filled.dead_letters(limit=1) == letters[:1]


def test_unknown_names_and_bad_arguments_are_refused(filled):
    with pytest.raises(StoreError, match="no column 'mid; DROP TABLE features'"):
        filled.latest("features", BTC, ["mid; DROP TABLE features"])
    with pytest.raises(StoreError, match="unknown table 'nope'"):
        filled.rows("nope")
    with pytest.raises(StoreError, match="not kept per instrument"):
        filled.latest("dead_letters", BTC)
    with pytest.raises(StoreError, match="list of names"):
        filled.range("features", BTC, 0, 1, "mid")
    with pytest.raises(StoreError, match="limit"):
        filled.range("features", BTC, 0, 1, limit=-1)
    with pytest.raises(StoreError, match="start_ns"):
        filled.range("features", BTC, 1.5, 2)
    with pytest.raises(StoreError, match="does not tile"):
        filled.downsample("features", BTC, ["mid"], 0, 10**12, 7 * 10**9)
    with pytest.raises(StoreError, match="non-key columns"):
        filled.downsample("features", BTC, ["seq"], 0, 10**12, 10**9)


# -- predictions and run metrics -----------------------------------------------------------------


@pytest.fixture
def predicted(store):
    """BTC predicted at T0 + k ms (k = 0..4, seq k) for horizons "10" and "1s", except that the last event
    (k = 4) has only "10"; the rows are written newest first. ETH has one "1s" prediction."""
    rows = [prediction_row(BTC, T0 + k * MS, k, h, p_up=0.1 * k) for k in range(4) for h in ("10", "1s")]
    rows.append(prediction_row(BTC, T0 + 4 * MS, 4, "10", p_up=0.9))
    rows.append(prediction_row(ETH, T0, 0, "1s"))
    with store.writer() as w:
        w.write("predictions", rows[::-1])
    with store.reader() as r:
        yield r


def test_latest_predictions_are_those_of_the_newest_event(predicted):
    rows = predicted.latest_predictions(BTC)
    assert [(r["ts"], r["seq"], r["horizon"], r["p_up"]) for r in rows] == [(T0 + 4 * MS, 4, "10", 0.9)]
    assert rows[0] == expected("predictions", [prediction_row(BTC, T0 + 4 * MS, 4, "10", p_up=0.9)])[0]
    assert [r["horizon"] for r in predicted.latest_predictions(ETH)] == ["1s"]
    assert predicted.latest_predictions("nowhere:XYZ") == []


def test_latest_predictions_of_named_horizons_wherever_they_are(predicted):
    rows = predicted.latest_predictions(BTC, ["1s", "10", "1s", "5m"])
    assert [(r["horizon"], r["seq"]) for r in rows] == [("10", 4), ("1s", 3)]  # 5m was never predicted
    assert predicted.latest_predictions(BTC, []) == []


def test_latest_predictions_come_in_the_models_order_of_horizons_not_as_text(store):
    with store.writer() as w:
        w.write("predictions", [prediction_row(BTC, T0, 0, h) for h in ("10s", "100", "1s", "10", "500ms", "50")])
    with store.reader() as r:
        assert [row["horizon"] for row in r.latest_predictions(BTC)] == ["10", "50", "100", "500ms", "1s", "10s"]


def test_prediction_range_is_ordered_by_event_then_horizon_and_paged(predicted):
    rows = predicted.prediction_range(BTC, T0 + MS, T0 + 4 * MS)
    assert [(r["seq"], r["horizon"]) for r in rows] == [(k, h) for k in (1, 2, 3) for h in ("10", "1s")]
    assert list(rows[0]) == list(TABLES["predictions"].names)
    only = predicted.prediction_range(BTC, 0, 2**63 - 1, horizons=["10"], limit=2, offset=3)
    assert [(r["seq"], r["horizon"]) for r in only] == [(3, "10"), (4, "10")]
    assert predicted.prediction_range(BTC, 0, 2**63 - 1, horizons=[]) == []
    assert predicted.prediction_range(ETH, T0 + 1, 2**63 - 1) == []


def test_prediction_readers_refuse_bad_horizons(predicted):
    with pytest.raises(StoreError, match="list of non-empty names"):
        predicted.latest_predictions(BTC, "10")
    with pytest.raises(StoreError, match="list of non-empty names"):
        predicted.prediction_range(BTC, 0, 1, horizons=[""])
    with pytest.raises(StoreError, match="at most 64 horizons"):
        predicted.latest_predictions(BTC, [str(k) for k in range(65)])
    with pytest.raises(StoreError, match="limit"):
        predicted.prediction_range(BTC, 0, 1, limit=100_001)


def test_vol_forecasts_latest_is_the_newest_events_and_a_matured_one_replaces_the_first(store):
    rows = [vol_forecast_row(BTC, T0 + k * MS, k, h, m, forecast=k + 1.0) for k in range(3) for h in ("10s", "60s")
            for m in ("ewma", "har")]  # fmt: skip
    with store.writer() as w:
        w.write("vol_forecasts", rows[::-1])
        w.write("vol_forecasts", [vol_forecast_row(BTC, T0 + MS, 1, "10s", "har", forecast=2.0, realized=3.5)])
    with store.reader() as r:
        latest = r.latest_vol_forecasts(BTC)
        assert [(x["seq"], x["horizon"], x["model"], x["forecast"]) for x in latest] == [
            (2, h, m, 3.0) for h in ("10s", "60s") for m in ("ewma", "har")
        ]
        page = r.vol_forecast_range(BTC, T0 + MS, T0 + 2 * MS, horizons=["10s"])
        assert [(x["model"], x["realized"], x["matured_ts"]) for x in page] == [
            ("ewma", None, None),
            ("har", 3.5, T0 + MS + 10**10),
        ]
        assert r.vol_forecast_range(BTC, 0, 2**63 - 1, limit=2, offset=11)[0]["seq"] == 2
        assert r.latest_vol_forecasts(ETH) == [] and r.vol_forecast_range(BTC, 0, 1, horizons=[]) == []


def test_prediction_readers_answer_empty_before_any_prediction(store):
    with store.reader() as r:
        assert r.latest_predictions(BTC) == [] and r.prediction_range(BTC, 0, 2**63 - 1) == []
        assert r.latest_run_metrics() == []
        assert r.latest_vol_forecasts(BTC) == [] and r.vol_forecast_range(BTC, 0, 2**63 - 1) == []


def test_latest_run_metrics_are_each_workers_last_row_of_the_newest_run(store):
    rows = [
        ("old", T0 + 50 * US, 0, 1, 1, 0, 1.0, 1.0, 2.0, 0, 0, 0, 0),  # older run, newer last row
        ("new", T0 + 10 * US, 0, 100, 100, 0, 10.0, 1.0, 2.0, 0, 0, 0, 0),
        ("new", T0 + 60 * US, 0, 200, 190, 10, 20.0, 3.0, 4.0, 2, 1, 4, 1),
        ("new", T0 + 70 * US, 1, 50, 50, 0, 5.0, None, None, None, None, None, None),
        ("new", T0 + 20 * US, 1, 20, 20, 0, 2.0, 1.0, 1.0, 0, 0, 0, 0),
    ]
    with store.writer() as w:
        w.write("run_metrics", rows)
    with store.reader() as r:
        assert r.latest_run_metrics() == expected("run_metrics", [rows[2], rows[3]])


# -- writer behaviour ----------------------------------------------------------------------------


def test_rows_of_the_wrong_width_are_refused(store):
    with store.writer() as w, pytest.raises(StoreError, match="a trades row has 3 values; expected 8"):
        w.write("trades", [(BTC, T0, 1)])


def test_writes_wait_for_a_batch_or_a_flush(store):
    with store.writer(batch_rows=3, max_delay_s=3600) as w, store.reader() as r:
        w.write("trades", [trade_row(BTC, T0, 1), trade_row(BTC, T0, 2)])
        assert r.count("trades") == 0
        w.write("trades", [trade_row(BTC, T0, 3)])  # the third row makes a batch
        assert r.count("trades") == 3
        w.write("trades", [trade_row(BTC, T0, 4)])
        w.flush()
        assert r.count("trades") == 4


def test_a_write_after_max_delay_sends_what_is_queued(store):
    with store.writer(batch_rows=1000, max_delay_s=0.0) as w, store.reader() as r:
        w.write("trades", [trade_row(BTC, T0, 1)])
        assert r.count("trades") == 1


def test_an_error_in_the_with_block_drops_the_queue_and_closes(store):
    with pytest.raises(RuntimeError), store.writer(max_delay_s=3600) as w:
        w.write("trades", [trade_row(BTC, T0, 1)])
        raise RuntimeError("boom")
    with store.reader() as r:
        assert r.count("trades") == 0
    with pytest.raises(StoreError, match="closed"):
        w.write("trades", [trade_row(BTC, T0, 2)])


# -- properties ----------------------------------------------------------------------------------

keys = st.tuples(st.sampled_from([BTC, ETH]), st.integers(0, 50).map(lambda k: T0 + k * US), st.integers(0, 5))
writes = st.lists(st.tuples(keys, st.floats(allow_nan=False, allow_infinity=False)), max_size=60)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=writes, splits=st.lists(st.integers(1, 20), min_size=1, max_size=5), repeat=st.booleans())
def test_property_last_write_wins_and_ranges_are_ordered(store_backend, tmp_path, writes, splits, repeat):
    store = open_visible(empty_store_url(store_backend, tmp_path))
    rows = [trade_row(i, ts, seq, price=price) for (i, ts, seq), price in writes]
    truth = {}
    for row in rows:
        truth[row[:3]] = row
    with store.writer(batch_rows=max(splits), max_delay_s=3600) as w:
        start = 0
        while start < len(rows):
            for size in splits:
                w.write("trades", rows[start : start + size])
                start += size
        if repeat:
            w.write("trades", rows)
    with store.reader() as r:
        assert r.rows("trades") == expected("trades", truth.values())
        got = r.range("trades", BTC, T0 + 10 * US, T0 + 40 * US, ["price"])
        want = sorted(k[1:] for k in truth if k[0] == BTC and T0 + 10 * US <= k[1] < T0 + 40 * US)
        assert [(g["ts"], g["seq"]) for g in got] == want


def test_the_book_and_trades_schemas_match_the_flow():
    assert BOOK.names[:5] == ("instrument", "ts", "seq", "exchange_ts", "update_id") and len(BOOK.names) == 45
    assert TRADES.names == ("instrument", "ts", "seq", "exchange_ts", "trade_id", "price", "size", "side")
