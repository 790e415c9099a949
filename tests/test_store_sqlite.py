"""The SQLite store: round trips, idempotent upserts, the readers' answers on hand-built rows, time
limits, schema growth, and readers in another process while writer threads write."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import StoreError, digest, open_store
from store.base import StoreTimeout
from store.schema import BOOK, FEATURES, TABLES, TRADES

ROOT = Path(__file__).resolve().parents[1]
BTC, ETH = "binance:BTCUSDT", "coinbase:ETH-USD"
T0 = 1_723_075_200_123_456_789  # 2024-08-08, ns
NAN = math.nan


@pytest.fixture
def store(tmp_path):
    return open_store(f"sqlite:///{tmp_path}/store.db")


def book_row(instrument, ts, seq, bid=100.0, levels=10):
    bids = [bid - k for k in range(levels)] + [NAN] * (10 - levels)
    asks = [bid + 1 + k for k in range(levels)] + [None] * (10 - levels)
    return (instrument, ts, seq, ts - 5_000_000, 7_000 + seq, *bids, *[1.0] * 10, *asks, *[2.0] * 10)


def feature_row(instrument, ts, seq, mid=100.5, **values):
    row = [NAN] * len(FEATURES.columns)
    row[:5] = [instrument, ts, seq, None, None]
    names = FEATURES.names
    for name, value in {"mid": mid, "spread": 1.0, **values}.items():
        row[names.index(name)] = value
    return tuple(row)


def trade_row(instrument, ts, seq, price=100.0, size=0.5, side=1, trade_id="t1"):
    return (instrument, ts, seq, ts - 1_000_000, trade_id, price, size, side)


def prediction_row(instrument, ts, seq, horizon, p_up=0.5, label=None):
    p_down = p_flat = (1 - p_up) / 2
    probs = {"lstm": [p_down, p_flat, p_up], "river": [1 / 3, 1 / 3, 1 / 3]}
    matured = (label, 1.5 * label, ts + 10**9) if label is not None else (None, None, None)
    predicted, confidence = (1, p_up) if p_up > p_down else (0, p_flat)
    weights = json.dumps({"lstm": 0.7, "river": 0.3})
    return (instrument, ts, seq, horizon, ts - 1_000, p_down, p_flat, p_up, predicted, confidence,
            json.dumps(probs), weights, *matured)  # fmt: skip


RAW = b'{"e":"depthUpdate","b":[["1e400",-1]]}\n\x00\xff'
SAMPLES = {
    "book": [book_row(BTC, T0, 1), book_row(BTC, T0 + 1, 2, levels=3)],
    "features": [feature_row(BTC, T0, 1), feature_row(ETH, T0 + 5, 1, mid=NAN)],
    "trades": [trade_row(BTC, T0, 3), trade_row(BTC, T0, 4, side=-1, trade_id=None)],
    "resyncs": [(BTC, T0 + 9, 5, None, 123, "gap: U=7 after u=5")],
    "dead_letters": [
        ("binance", BTC, T0 + 2, digest(RAW), "negative size", RAW),
        ("kraken", None, T0 + 3, digest(b"x"), "malformed", b"x"),
    ],
    "run_metrics": [("run1", T0, 0, 1000, 990, 10, 51_000.5, 0.4, 2.5), ("run1", T0, 1, 5, 5, 0, None, NAN, NAN)],
    "predictions": [prediction_row(BTC, T0, 1, "10", label=1), prediction_row(BTC, T0, 1, "1s", p_up=0.2)],
}


def expected(table, rows):
    """What the store gives back: dicts by column name, NaN as None, ordered by the key."""
    spec = TABLES[table]
    out = [
        {n: None if isinstance(v, float) and math.isnan(v) else v for n, v in zip(spec.names, row, strict=True)}
        for row in rows
    ]
    return sorted(out, key=lambda r: tuple(r[k] for k in spec.key))


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
    assert row["exchange_ts"] == T0 - 5_000_000


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
    """BTC features at T0 + k ms (k = 0..9, seq k), two events sharing T0 + 10 ms; ETH at T0 + 3 ms."""
    ms = 1_000_000
    rows = [feature_row(BTC, T0 + k * ms, k, mid=100.0 + k, spread=0.1 * k) for k in range(10)]
    rows += [feature_row(BTC, T0 + 10 * ms, 11, mid=111.0), feature_row(BTC, T0 + 10 * ms, 10, mid=110.0)]
    rows.append(feature_row(ETH, T0 + 3 * ms, 0, mid=2500.0))
    with store.writer() as w:
        w.write("features", rows)
        w.write("trades", [trade_row(ETH, T0, 0)])
        w.write("dead_letters", SAMPLES["dead_letters"])
    with store.reader() as r:
        yield r


def test_instruments(filled):
    assert filled.instruments() == [BTC, ETH]


def test_latest_takes_the_greatest_ts_then_seq(filled):
    assert filled.latest("features", BTC, ["mid"]) == {
        "instrument": BTC,
        "ts": T0 + 10_000_000,
        "seq": 11,
        "mid": 111.0,
    }
    assert filled.latest("features", "nowhere:XYZ") is None
    assert filled.latest("book", BTC) is None  # a table nothing was written to yet


def test_latest_per_instrument(filled):
    rows = filled.latest_per_instrument("features", ["mid"])
    assert [(r["instrument"], r["seq"], r["mid"]) for r in rows] == [(BTC, 11, 111.0), (ETH, 0, 2500.0)]
    assert filled.latest_per_instrument("trades")[0]["price"] == 100.0


def test_range_is_half_open_ordered_and_paged(filled):
    ms = 1_000_000
    rows = filled.range("features", BTC, T0 + 2 * ms, T0 + 5 * ms, ["mid", "spread"])
    assert [r["seq"] for r in rows] == [2, 3, 4]
    assert list(rows[0]) == ["instrument", "ts", "seq", "mid", "spread"]
    everything = filled.range("features", BTC, 0, 2**63 - 1)
    assert [r["seq"] for r in everything] == [*range(10), 10, 11]  # (ts, seq) order, whatever the write order
    page = filled.range("features", BTC, 0, 2**63 - 1, ["mid"], limit=3, offset=4)
    assert [r["seq"] for r in page] == [4, 5, 6]
    assert filled.range("features", BTC, 0, 2**63 - 1, limit=0) == []


def test_downsample_keeps_each_buckets_last_row(filled):
    ms = 1_000_000
    bucket = 4 * ms
    origin = T0 - T0 % bucket
    rows = filled.downsample("features", BTC, ["mid", "micro_price"], T0, T0 + 11 * ms, bucket)
    # The bucket start is a multiple of bucket_ns; the last row is the greatest (ts, seq) in it, its nulls included.
    assert [r["ts"] for r in rows] == [origin + k * bucket for k in range(len(rows))]
    last_in = {}
    for k, mid in [*((k, 100.0 + k) for k in range(10)), (10, 110.0), (10, 111.0)]:
        last_in[(T0 + k * ms - origin) // bucket] = mid
    assert [r["mid"] for r in rows] == list(last_in.values())
    assert all(r["micro_price"] is None for r in rows)
    assert filled.downsample("features", BTC, ["mid"], T0 + ms, T0 + 2 * ms, 1000) == [
        {"ts": T0 + ms - 789, "mid": 101.0}
    ]


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


def test_a_query_past_the_time_limit_is_stopped(store, monkeypatch):
    monkeypatch.setenv("QF_STORE_TIMEOUT_S", "0.2")
    slow = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
    with store.reader() as r:
        started = time.monotonic()
        with pytest.raises(StoreError, match=r"stopped after 0\.2 s"):
            r._fetch(slow, ())
        assert time.monotonic() - started < 2
        assert r._fetch("SELECT 1", ()) == [(1,)]  # the connection is still usable


def test_a_query_past_the_time_limit_is_a_store_timeout(store, monkeypatch):
    monkeypatch.setenv("QF_STORE_TIMEOUT_S", "0.1")
    slow = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
    with store.reader() as r, pytest.raises(StoreTimeout):
        r._fetch(slow, ())
    with store.reader() as r, pytest.raises(StoreError) as failed:
        r._fetch("SELECT nope", ())
    assert not isinstance(failed.value, StoreTimeout)


# -- predictions and run metrics -----------------------------------------------------------------


@pytest.fixture
def predicted(store):
    """BTC predicted at T0 + k ms (k = 0..4, seq k) for horizons "10" and "1s", except that the last event
    (k = 4) has only "10"; the rows are written newest first. ETH has one "1s" prediction."""
    ms = 1_000_000
    rows = [prediction_row(BTC, T0 + k * ms, k, h, p_up=0.1 * k) for k in range(4) for h in ("10", "1s")]
    rows.append(prediction_row(BTC, T0 + 4 * ms, 4, "10", p_up=0.9))
    rows.append(prediction_row(ETH, T0, 0, "1s"))
    with store.writer() as w:
        w.write("predictions", rows[::-1])
    with store.reader() as r:
        yield r


def test_latest_predictions_are_those_of_the_newest_event(predicted):
    rows = predicted.latest_predictions(BTC)
    assert [(r["ts"], r["seq"], r["horizon"], r["p_up"]) for r in rows] == [(T0 + 4_000_000, 4, "10", 0.9)]
    assert rows[0] == expected("predictions", [prediction_row(BTC, T0 + 4_000_000, 4, "10", p_up=0.9)])[0]
    assert [r["horizon"] for r in predicted.latest_predictions(ETH)] == ["1s"]
    assert predicted.latest_predictions("nowhere:XYZ") == []


def test_latest_predictions_of_named_horizons_wherever_they_are(predicted):
    rows = predicted.latest_predictions(BTC, ["1s", "10", "1s", "5m"])
    assert [(r["horizon"], r["seq"]) for r in rows] == [("10", 4), ("1s", 3)]  # 5m was never predicted
    assert predicted.latest_predictions(BTC, []) == []


def test_prediction_range_is_ordered_by_event_then_horizon_and_paged(predicted):
    ms = 1_000_000
    rows = predicted.prediction_range(BTC, T0 + ms, T0 + 4 * ms)
    assert [(r["seq"], r["horizon"]) for r in rows] == [
        (1, "10"),
        (1, "1s"),
        (2, "10"),
        (2, "1s"),
        (3, "10"),
        (3, "1s"),
    ]
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


def test_prediction_readers_answer_empty_before_any_prediction(store):
    with store.reader() as r:
        assert r.latest_predictions(BTC) == [] and r.prediction_range(BTC, 0, 2**63 - 1) == []
        assert r.latest_run_metrics() == []


def test_latest_run_metrics_are_each_workers_last_row_of_the_newest_run(store):
    rows = [
        ("old", T0 + 50, 0, 1, 1, 0, 1.0, 1.0, 2.0),  # an older run's last row is newer than run "new"'s first
        ("new", T0 + 10, 0, 100, 100, 0, 10.0, 1.0, 2.0),
        ("new", T0 + 60, 0, 200, 190, 10, 20.0, 3.0, 4.0),
        ("new", T0 + 70, 1, 50, 50, 0, 5.0, None, None),
        ("new", T0 + 20, 1, 20, 20, 0, 2.0, 1.0, 1.0),
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


def test_a_failed_batch_is_kept_for_a_retry(store):
    w = store.writer(max_delay_s=3600)
    w.write("trades", [trade_row(BTC, T0, 1, price=None)])  # price is NOT NULL
    with pytest.raises(StoreError, match="writing 1 rows to trades failed"):
        w.flush()
    with pytest.raises(StoreError):
        w.flush()
    w._pending.clear()
    w.close()


def test_a_database_from_an_older_schema_gains_the_new_columns(store):
    import sqlite3

    from store.sqlite import create_sql, ensure_table

    old = FEATURES._replace(columns=FEATURES.columns[:-2])  # as if the last two features were added since
    conn = sqlite3.connect(store.path)
    conn.execute(create_sql(old))
    conn.execute("INSERT INTO features (instrument, ts, seq, mid) VALUES (?, ?, ?, ?)", (BTC, T0, 1, 1.0))
    conn.commit()
    ensure_table(conn, FEATURES)
    conn.close()
    with store.writer() as w:
        w.write("features", [feature_row(BTC, T0, 2, **{FEATURES.names[-1]: 3.0})])
    with store.reader() as r:
        rows = r.rows("features")
    assert [(row["seq"], row["mid"], row[FEATURES.names[-1]]) for row in rows] == [(1, 1.0, None), (2, 100.5, 3.0)]


# -- concurrency: writer threads in this process, readers in another -----------------------------

READER_SCRIPT = r"""
import json, os, sys, time
from store import open_store
url, stop = sys.argv[1], sys.argv[2]
reader = open_store(url).reader()
stats = {"queries": 0, "errors": [], "decreasing": 0, "last": 0}
reader.count("book")
print("ready", flush=True)
deadline = time.monotonic() + 60
while not os.path.exists(stop) and time.monotonic() < deadline:
    try:
        n = reader.count("book")
        reader.instruments()
        reader.latest_per_instrument("book", ["bid_price_1"])
        reader.range("book", "w0:X", 0, 2**63 - 1, ["ask_price_1"], limit=50, offset=max(0, n // 3 - 50))
        reader.downsample("book", "w1:X", ["bid_price_1"], 0, 10**12, 10**9)
        stats["decreasing"] += n < stats["last"]
        stats["last"] = n
        stats["queries"] += 5
    except Exception as e:
        stats["errors"].append(repr(e))
print(json.dumps(stats))
"""


def test_reader_processes_query_while_writer_threads_write(store, tmp_path):
    stop = tmp_path / "stop"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER_SCRIPT, store.url, str(stop)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for _ in range(2)
    ]
    for p in readers:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    errors: list[BaseException] = []
    written = [0, 0, 0]

    def write(worker: int) -> None:  # each Bytewax worker is a thread with its own writer
        try:
            with store.writer(batch_rows=200) as w:
                end = time.monotonic() + 2.5
                k = 0
                while time.monotonic() < end:
                    w.write("book", [book_row(f"w{worker}:X", k * 10**7 + j, j) for j in range(50)])
                    w.flush()
                    written[worker] += 50
                    k += 1
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.touch()
    outs = [p.communicate(timeout=60) for p in readers]
    assert errors == []
    for (out, err), p in zip(outs, readers, strict=True):
        assert p.returncode == 0, err
        stats = json.loads(out)
        assert stats["errors"] == [] and stats["decreasing"] == 0
        assert stats["queries"] > 20
    with store.reader() as r:
        assert r.count("book") == sum(written) > 0


# -- properties ----------------------------------------------------------------------------------

keys = st.tuples(st.sampled_from([BTC, ETH]), st.integers(T0, T0 + 50), st.integers(0, 5))
writes = st.lists(st.tuples(keys, st.floats(allow_nan=False, allow_infinity=False)), max_size=60)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=writes, splits=st.lists(st.integers(1, 20), min_size=1, max_size=5), repeat=st.booleans())
def test_property_last_write_wins_and_ranges_are_ordered(tmp_path_factory, writes, splits, repeat):
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('p')}/p.db")
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
        got = r.range("trades", BTC, T0 + 10, T0 + 40, ["price"])
        want = sorted(k[1:] for k in truth if k[0] == BTC and T0 + 10 <= k[1] < T0 + 40)
        assert [(g["ts"], g["seq"]) for g in got] == want


def test_the_book_and_trades_schemas_match_the_flow():
    assert BOOK.names[:5] == ("instrument", "ts", "seq", "exchange_ts", "update_id") and len(BOOK.names) == 45
    assert TRADES.names == ("instrument", "ts", "seq", "exchange_ts", "trade_id", "price", "size", "side")
