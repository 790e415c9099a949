"""The QuestDB store at its boundaries, without a server: the DDL, the SQL each reader method issues
with its parameters, and the exact ILP the client is asked to send."""

from __future__ import annotations

import math
import warnings
from datetime import datetime

import pytest

from store import StoreError, digest, open_store
from store.questdb import (
    QuestDBReader,
    QuestDBWriter,
    add_rows,
    create_sql,
    ensure_table,
    new_sender,
    pg_connect_kwargs,
    to_param,
)
from store.schema import FEATURE_NAMES, FEATURES, TABLES
from store.url import QuestDBLocation

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # the legacy import path is the one that exports Buffer
    from questdb.ingress import Buffer

BTC, ETH = "binance:BTCUSDT", "coinbase:ETH-USD"
T0 = 1_723_075_200_123_456_789  # 2024-08-08T00:00:00.123456789Z
T0_UP = datetime(2024, 8, 8, 0, 0, 0, 123457)  # rounded up to the microsecond, naive UTC
T0_DOWN = datetime(2024, 8, 8, 0, 0, 0, 123456)  # what QuestDB stores for T0


class FakePG:
    """Records every statement; answers SHOW COLUMNS with the schema's columns and others from ``answers``."""

    def __init__(self, answers: dict[str, list[tuple]] | None = None, columns: dict[str, tuple] | None = None):
        self.calls: list[tuple[str, tuple]] = []
        self.answers = answers or {}
        self.columns = columns or {}
        self.tables = list(TABLES)
        self.closed = False

    def execute(self, sql, params=()):
        self.calls.append((sql, tuple(params)))
        if sql == "SHOW TABLES":
            return [(name,) for name in self.tables]
        if sql.startswith("SHOW COLUMNS FROM "):
            table = sql.removeprefix("SHOW COLUMNS FROM ")
            return [(name, "TYPE") for name in self.columns.get(table, TABLES[table].names)]
        return next((rows for prefix, rows in self.answers.items() if sql.startswith(prefix)), [])

    def queries(self):
        return [(sql, params) for sql, params in self.calls if sql.startswith("SELECT")]

    def close(self):
        self.closed = True


class FakeSender:
    def __init__(self, log):
        self.log = log
        self.closed = False

    def new_buffer(self):
        return Buffer(protocol_version=1)

    def flush(self, buffer, transactional=False):
        self.log.append(("flush", bytes(buffer).decode(), transactional))
        buffer.clear()

    def close(self, flush=True):
        self.closed = True


# -- DDL -----------------------------------------------------------------------------------------


def test_ddl_of_each_table():
    assert create_sql(TABLES["trades"]) == (
        "CREATE TABLE IF NOT EXISTS trades (instrument SYMBOL, ts TIMESTAMP, seq LONG, exchange_ts TIMESTAMP, "
        "trade_id VARCHAR, price DOUBLE, size DOUBLE, side INT) "
        "TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, instrument, seq)"
    )
    assert create_sql(TABLES["resyncs"]) == (
        "CREATE TABLE IF NOT EXISTS resyncs (instrument SYMBOL, ts TIMESTAMP, seq LONG, exchange_ts TIMESTAMP, "
        "update_id LONG, reason VARCHAR) TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, instrument, seq)"
    )
    assert create_sql(TABLES["dead_letters"]) == (
        "CREATE TABLE IF NOT EXISTS dead_letters (feed SYMBOL, instrument SYMBOL, ts TIMESTAMP, digest LONG, "
        "reason VARCHAR, raw VARCHAR) TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, feed, digest)"
    )
    assert create_sql(TABLES["run_metrics"]) == (
        "CREATE TABLE IF NOT EXISTS run_metrics (run_id SYMBOL, ts TIMESTAMP, worker INT, events_in LONG, "
        "rows_out LONG, dead_letters LONG, events_per_s DOUBLE, lag_p50_ms DOUBLE, lag_p99_ms DOUBLE, "
        "decoder_errors LONG, source_errors LONG, reconnects LONG, venue_resyncs LONG) "
        "TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, run_id, worker)"
    )
    levels = ", ".join(
        f"{side}_{what}_{k} DOUBLE" for side in ("bid", "ask") for what in ("price", "size") for k in range(1, 11)
    )
    assert create_sql(TABLES["book"]) == (
        "CREATE TABLE IF NOT EXISTS book (instrument SYMBOL, ts TIMESTAMP, seq LONG, exchange_ts TIMESTAMP, "
        f"update_id LONG, {levels}) TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, instrument, seq)"
    )
    assert create_sql(TABLES["vol_forecasts"]) == (
        "CREATE TABLE IF NOT EXISTS vol_forecasts (instrument SYMBOL, ts TIMESTAMP, seq LONG, horizon SYMBOL, "
        "model SYMBOL, forecast DOUBLE, realized DOUBLE, matured_ts TIMESTAMP) "
        "TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, instrument, seq, horizon, model)"
    )
    assert create_sql(TABLES["backtests"]) == (
        "CREATE TABLE IF NOT EXISTS backtests (ts TIMESTAMP, id SYMBOL, strategy SYMBOL, instrument SYMBOL, "
        "recordings VARCHAR, start_ns LONG, end_ns LONG, settings VARCHAR, metrics VARCHAR, benchmarks VARCHAR, "
        "net_pnl DOUBLE, trades LONG, sharpe DOUBLE, win_rate DOUBLE, max_drawdown DOUBLE, profit_factor DOUBLE) "
        "TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, id)"
    )
    features = ", ".join(f"{name} DOUBLE" for name in FEATURE_NAMES)
    assert create_sql(FEATURES) == (
        "CREATE TABLE IF NOT EXISTS features (instrument SYMBOL, ts TIMESTAMP, seq LONG, exchange_ts TIMESTAMP, "
        f"update_id LONG, {features}) TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, instrument, seq)"
    )


def test_ensure_creates_then_adds_the_columns_the_schema_gained():
    pg = FakePG(columns={"features": FEATURES.names[:-2]})
    ensure_table(pg, FEATURES)
    assert pg.calls == [
        (create_sql(FEATURES), ()),
        ("SHOW COLUMNS FROM features", ()),
        (f"ALTER TABLE features ADD COLUMN {FEATURE_NAMES[-2]} DOUBLE", ()),
        (f"ALTER TABLE features ADD COLUMN {FEATURE_NAMES[-1]} DOUBLE", ()),
    ]


class RacingPG(FakePG):
    """Another writer adds the column between our SHOW COLUMNS and our ALTER (or, if ``lands`` is
    False, the ALTER fails for some other reason)."""

    def __init__(self, lands: bool):
        super().__init__(columns={"features": FEATURES.names[:-1]})
        self.lands = lands

    def execute(self, sql, params=()):
        if sql.startswith("ALTER"):
            if self.lands:
                self.columns = {}
            raise StoreError("column already exists")
        return super().execute(sql, params)


def test_ensure_tolerates_a_column_another_writer_added_first():
    ensure_table(RacingPG(lands=True), FEATURES)
    with pytest.raises(StoreError, match="already exists"):
        ensure_table(RacingPG(lands=False), FEATURES)


# -- ILP -----------------------------------------------------------------------------------------


def ilp(table, rows):
    buffer = Buffer(protocol_version=1)
    add_rows(buffer, TABLES[table], rows)
    return bytes(buffer).decode()


def test_ilp_for_trades_resyncs_and_run_metrics():
    trades = [(BTC, T0, 3, T0 - 1_000_000, "t1", 100.0, 0.5, 1), (BTC, T0, 4, None, None, 0.1 + 0.2, 1e-9, -1)]
    assert ilp("trades", trades) == (
        # symbols as tags; designated timestamp in ns; other TIMESTAMPs in us ('t'); NULLs left out
        'trades,instrument=binance:BTCUSDT seq=3i,exchange_ts=1723075200122456t,trade_id="t1",price=100.0,'
        "size=0.5,side=1i 1723075200123456789\n"
        "trades,instrument=binance:BTCUSDT seq=4i,price=0.30000000000000004,size=1e-9,side=-1i 1723075200123456789\n"
    )
    assert ilp("resyncs", [(ETH, T0, 5, None, 123, "gap: 7 after 5")]) == (
        'resyncs,instrument=coinbase:ETH-USD seq=5i,update_id=123i,reason="gap: 7 after 5" 1723075200123456789\n'
    )
    row = ("run 1,a=b", T0, 0, 1000, 990, 10, 51000.5, math.nan, None, 2, None, 3, None)
    assert ilp("run_metrics", [row]) == (
        r"run_metrics,run_id=run\ 1\,a\=b worker=0i,events_in=1000i,rows_out=990i,dead_letters=10i,"
        "events_per_s=51000.5,decoder_errors=2i,reconnects=3i 1723075200123456789\n"
    )


def test_ilp_for_a_backtest_has_its_names_as_tags_and_its_json_as_strings():
    row = (T0, "bt 1", "follow", BTC, '["a.gz"]', T0 - 5, T0 + 7, '{"q":"risk-averse"}', '{"sharpe":null}', None,
           -2.5, 4, math.nan, 0.25, 3.0, None)  # fmt: skip
    assert ilp("backtests", [row]) == (
        r"backtests,id=bt\ 1,strategy=follow,instrument=binance:BTCUSDT "
        'recordings="[\\"a.gz\\"]",start_ns=1723075200123456784i,end_ns=1723075200123456796i,'
        'settings="{\\"q\\":\\"risk-averse\\"}",metrics="{\\"sharpe\\":null}",'
        "net_pnl=-2.5,trades=4i,win_rate=0.25,max_drawdown=3.0 1723075200123456789\n"
    )


def test_ilp_for_dead_letters_carries_the_raw_bytes_as_base64():
    raw = b'{"b":[["1",-1]]}\x00\xff'
    line = ilp("dead_letters", [("kraken", None, T0 + 3, digest(raw), 'bad "size"', raw)])
    assert line == (
        f'dead_letters,feed=kraken digest={digest(raw)}i,reason="bad \\"size\\"",'
        'raw="eyJiIjpbWyIxIiwtMV1dfQD/" 1723075200123456792\n'
    )


def test_ilp_for_a_book_row_leaves_missing_levels_out():
    bids, asks = [100.0, 99.5, math.nan, *[None] * 7], [101.0, *[math.nan] * 9]
    row = (BTC, T0, 1, T0 - 5, 77, *bids, *[1.0, 2.0, *[None] * 8], *asks, *[3.0, *[None] * 9])
    assert ilp("book", [row]) == (
        "book,instrument=binance:BTCUSDT seq=1i,exchange_ts=1723075200123456t,update_id=77i,"
        "bid_price_1=100.0,bid_price_2=99.5,bid_size_1=1.0,bid_size_2=2.0,ask_price_1=101.0,ask_size_1=3.0 "
        "1723075200123456789\n"
    )


def test_the_writer_creates_tables_before_sending_one_transactional_request_per_table_batch():
    log: list = []
    pg = FakePG()
    pg_execute = pg.execute
    pg.execute = lambda sql, params=(): log.append(("sql", sql)) or pg_execute(sql, params)
    sender = FakeSender(log)
    with QuestDBWriter(pg, lambda: sender, batch_rows=2, max_delay_s=3600) as w:
        w.write("resyncs", [(ETH, T0, k, None, None, "r") for k in range(3)])
        w.write("trades", [(BTC, T0, 1, None, None, 1.0, 2.0, 0)])
    line = 'resyncs,instrument=coinbase:ETH-USD seq={}i,reason="r" 1723075200123456789\n'
    assert log == [
        ("sql", create_sql(TABLES["resyncs"])),
        ("sql", "SHOW COLUMNS FROM resyncs"),
        ("flush", line.format(0) + line.format(1), True),  # batch_rows reached: batches of 2
        ("flush", line.format(2), True),
        ("sql", create_sql(TABLES["trades"])),
        ("sql", "SHOW COLUMNS FROM trades"),
        ("flush", "trades,instrument=binance:BTCUSDT seq=1i,price=1.0,size=2.0,side=0i 1723075200123456789\n", True),
    ]
    assert sender.closed and pg.closed


def test_a_bad_value_is_a_store_error_and_the_batch_is_kept():
    log: list = []
    w = QuestDBWriter(FakePG(), lambda: FakeSender(log), max_delay_s=3600)
    w.write("trades", [(BTC, T0, 1, None, None, "not a price", 2.0, 0)])
    with pytest.raises(StoreError, match="writing 1 rows to trades failed"):
        w.flush()
    assert log == [] and len(w._pending["trades"]) == 1


# -- SQL issued by the readers -------------------------------------------------------------------


def reader(answers=None):
    pg = FakePG(answers)
    return QuestDBReader(pg), pg


def test_time_bounds_are_naive_utc_datetimes_rounded_up_to_the_microsecond():
    assert to_param(T0) == T0_UP and to_param(T0).tzinfo is None
    assert to_param(T0 - 789) == T0_DOWN  # already on a microsecond
    assert to_param(0) == datetime(1970, 1, 1)
    assert to_param(-1) == datetime(1970, 1, 1)


def test_latest():
    r, pg = reader({"SELECT": [(BTC, T0_DOWN, 11, 111.0)]})
    assert r.latest("features", BTC, ["mid"]) == {"instrument": BTC, "ts": T0 - 789, "seq": 11, "mid": 111.0}
    assert pg.queries() == [
        (
            "SELECT instrument, ts, seq, mid FROM features WHERE instrument = %s LATEST ON ts PARTITION BY instrument",
            (BTC,),
        )
    ]
    assert pg.calls[0] == ("SHOW TABLES", ())  # readers create nothing, and answer nothing from a missing table
    pg.tables = []
    assert QuestDBReader(pg).latest("features", BTC) is None and len(pg.queries()) == 1


def test_latest_per_instrument():
    r, pg = reader({"SELECT": [(ETH, T0_DOWN, 1, 2500.0), (BTC, T0_DOWN, 11, 111.0)]})
    rows = r.latest_per_instrument("features", ["mid"])
    assert [row["instrument"] for row in rows] == [BTC, ETH]
    assert pg.queries() == [
        ("SELECT instrument, ts, seq, mid FROM features LATEST ON ts PARTITION BY instrument", ()),
    ]


def test_range():
    r, pg = reader({"SELECT": [(BTC, T0_DOWN, 5, 1.5)]})
    rows = r.range("features", BTC, T0, T0 + 10**9, ["spread"], limit=3, offset=4)
    assert rows == [{"instrument": BTC, "ts": T0 - 789, "seq": 5, "spread": 1.5}]
    r.range("features", BTC, T0, T0 + 10**9, ["spread"])
    sql = (
        "SELECT instrument, ts, seq, spread FROM features "
        "WHERE instrument = %s AND ts >= %s AND ts < %s ORDER BY ts, seq"
    )
    params = (BTC, T0_UP, datetime(2024, 8, 8, 0, 0, 1, 123457))
    assert pg.queries() == [(f"{sql} LIMIT 4, 7", params), (f"{sql} LIMIT 1000", params)]
    assert all(p.tzinfo is None for p in params[1:])


@pytest.mark.parametrize(
    ("bucket_ns", "unit"),
    [(2_000, "2U"), (250 * 10**6, "250T"), (15 * 10**9, "15s"), (5 * 60 * 10**9, "5m"), (86_400 * 10**9, "24h")],
)
def test_downsample(bucket_ns, unit):
    r, pg = reader({"SELECT": [(T0_DOWN, 1.0, None)]})
    rows = r.downsample("features", BTC, ["mid", "spread"], T0, T0 + 10**8, bucket_ns)
    assert rows == [{"ts": T0 - 789, "mid": 1.0, "spread": None}]
    assert pg.queries() == [
        (
            "SELECT ts, last(mid) AS mid, last(spread) AS spread FROM features "
            f"WHERE instrument = %s AND ts >= %s AND ts < %s SAMPLE BY {unit} ALIGN TO CALENDAR",
            (BTC, T0_UP, datetime(2024, 8, 8, 0, 0, 0, 223457)),
        )
    ]


def test_count_instruments_dead_letters_and_rows():
    raw = b"\x00raw\xff"
    r, pg = reader(
        {
            "SELECT count(*)": [(13,)],
            "SELECT DISTINCT instrument FROM features": [(ETH,), (BTC,)],
            "SELECT DISTINCT instrument FROM trades": [(BTC,)],
            "SELECT feed": [("kraken", None, T0_DOWN, 5, "malformed", "AHJhd/8=")],
        }
    )
    assert r.count("features", BTC) == 13
    assert r.count("dead_letters") == 13
    assert r.instruments() == [BTC, ETH]
    letters = r.dead_letters(limit=10)
    assert letters == [
        {"feed": "kraken", "instrument": None, "ts": T0 - 789, "digest": 5, "reason": "malformed", "raw": raw}
    ]
    r.rows("trades")
    names = ", ".join(TABLES["trades"].names)
    assert pg.queries() == [
        ("SELECT count(*) FROM features WHERE instrument = %s", (BTC,)),
        ("SELECT count(*) FROM dead_letters", ()),
        ("SELECT DISTINCT instrument FROM book", ()),
        ("SELECT DISTINCT instrument FROM features", ()),
        ("SELECT DISTINCT instrument FROM trades", ()),
        ("SELECT DISTINCT instrument FROM resyncs", ()),
        (
            "SELECT feed, instrument, ts, digest, reason, raw FROM dead_letters "
            "ORDER BY ts DESC, feed, digest LIMIT 10",
            (),
        ),
        (f"SELECT {names} FROM trades ORDER BY instrument, ts, seq", ()),
    ]


def test_names_are_checked_before_any_sql():
    r, pg = reader()
    with pytest.raises(StoreError, match="no column 'mid\\) FROM x; --'"):
        r.range("features", BTC, 0, 1, ["mid) FROM x; --"])
    with pytest.raises(StoreError, match="does not tile"):
        r.downsample("features", BTC, ["mid"], 0, 1, 1_500)
    assert pg.calls == []


# -- connections ---------------------------------------------------------------------------------


def test_connection_settings(monkeypatch):
    monkeypatch.setenv("QF_QUESTDB_USER", "reader")
    monkeypatch.setenv("QF_QUESTDB_PASSWORD", "s3cret;x")
    store = open_store("questdb://db.example:9100?pg_port=5433")
    assert store.location == QuestDBLocation("db.example", 9100, 5433, "reader", "s3cret;x")
    assert store.url == "questdb://db.example:9100?pg_port=5433"
    assert pg_connect_kwargs(store.location, 5.0) == {
        "host": "db.example",
        "port": 5433,
        "user": "reader",
        "password": "s3cret;x",
        "dbname": "qdb",
        "autocommit": True,
        "connect_timeout": 5,
        "options": "-c statement_timeout=5000",
        "prepare_threshold": None,
    }
    assert open_store("questdb://localhost").location == QuestDBLocation("localhost", 9000, 8812, "reader", "s3cret;x")


def test_the_sender_speaks_ilp_v1_over_http_and_flushes_only_when_told():
    sender = new_sender(QuestDBLocation("localhost", 9, 8812))  # HTTP connects at the first flush, not here
    try:
        assert sender.protocol_version == 1 and sender.auto_flush is False
        buffer = sender.new_buffer()
        add_rows(buffer, TABLES["resyncs"], [(BTC, T0, 1, None, None, "r")])
        assert bytes(buffer).startswith(b"resyncs,instrument=binance:BTCUSDT ")
    finally:
        sender.close(flush=False)


class FakeConnection:
    """Stands in for a psycopg connection: fails as told, else answers one row."""

    def __init__(self, log, fail=None):
        self.log, self.fail, self.broken, self.closed = log, fail, False, False

    def execute(self, sql, params):
        self.log.append((id(self), sql))
        if self.fail is not None:
            error, self.broken, self.fail = self.fail
            raise error
        return type("Cursor", (), {"description": [("x",)], "fetchall": lambda _: [(1,)]})()

    def close(self):
        self.closed = True


def test_a_dropped_connection_is_opened_again_and_the_statement_retried(monkeypatch):
    import psycopg

    from store.questdb import PG

    log: list = []
    made = [FakeConnection(log), FakeConnection(log)]
    monkeypatch.setattr(psycopg, "connect", lambda **kwargs: made.pop(0))
    pg = PG(QuestDBLocation("localhost"), 5.0)
    first = made[0]
    assert pg.execute("SELECT 1") == [(1,)]
    first.fail = (psycopg.OperationalError("server closed the connection"), True, None)
    assert pg.execute("SELECT 2") == [(1,)]  # on a new connection
    assert first.closed and [sql for _, sql in log] == ["SELECT 1", "SELECT 2", "SELECT 2"]
    assert log[-1][0] != log[-2][0]


def test_a_failed_statement_on_a_live_connection_is_not_retried(monkeypatch):
    import psycopg

    from store.questdb import PG

    log: list = []
    conn = FakeConnection(log, fail=(psycopg.errors.QueryCanceled("timeout, query aborted"), False, None))
    monkeypatch.setattr(psycopg, "connect", lambda **kwargs: conn)
    with pytest.raises(StoreError, match="timeout, query aborted"):
        PG(QuestDBLocation("localhost"), 5.0).execute("SELECT slow()")
    assert len(log) == 1 and not conn.closed


def test_a_cancelled_statement_is_a_store_timeout(monkeypatch):
    import psycopg

    from store.base import StoreTimeout
    from store.questdb import PG

    for error in (psycopg.errors.QueryCanceled("timeout, query aborted"), psycopg.errors.ConnectionTimeout("slow")):
        monkeypatch.setattr(
            psycopg, "connect", lambda error=error, **kwargs: FakeConnection([], fail=(error, False, None))
        )
        with pytest.raises(StoreTimeout, match="did not answer in time"):
            PG(QuestDBLocation("localhost"), 5.0).execute("SELECT slow()")


# -- predictions and run metrics -----------------------------------------------------------------

PREDICTION_COLUMNS = ", ".join(TABLES["predictions"].names)


def prediction(ts, seq, horizon):
    return (BTC, ts, seq, horizon, None, 0.2, 0.3, 0.5, 1, 0.5, "{}", "{}", None, None, None)


def test_latest_predictions_keep_the_newest_events_rows():
    r, pg = reader({"SELECT": [prediction(T0_DOWN, 5, "1s"), prediction(T0_DOWN, 6, "10")]})
    assert [(row["seq"], row["horizon"], row["ts"]) for row in r.latest_predictions(BTC)] == [(6, "10", T0 - 789)]
    assert [row["horizon"] for row in r.latest_predictions(BTC, ["1s", "10"])] == ["10", "1s"]
    assert r.latest_predictions(BTC, []) == []
    sql = f"SELECT {PREDICTION_COLUMNS} FROM predictions WHERE instrument = %s"
    assert pg.queries() == [
        (f"{sql} LATEST ON ts PARTITION BY horizon", (BTC,)),
        (f"{sql} AND horizon IN (%s, %s) LATEST ON ts PARTITION BY horizon", (BTC, "1s", "10")),
    ]


def test_prediction_range():
    r, pg = reader({"SELECT": [prediction(T0_DOWN, 5, "1s")]})
    assert r.prediction_range(BTC, T0, T0 + 10**9, ["1s"], limit=3, offset=4)[0]["ts"] == T0 - 789
    r.prediction_range(BTC, T0, T0 + 10**9)
    sql = f"SELECT {PREDICTION_COLUMNS} FROM predictions WHERE instrument = %s AND ts >= %s AND ts < %s"
    params = (BTC, T0_UP, datetime(2024, 8, 8, 0, 0, 1, 123457))
    assert pg.queries() == [
        (f"{sql} AND horizon IN (%s) ORDER BY ts, seq, horizon LIMIT 4, 7", (*params, "1s")),
        (f"{sql} ORDER BY ts, seq, horizon LIMIT 1000", params),
    ]


def test_latest_vol_forecasts_are_the_newest_per_horizon_and_model():
    rows = [(BTC, T0_DOWN, 7, h, m, 1.0, None, None) for h in ("10s", "60s") for m in ("har", "last")]
    r, pg = reader({"SELECT": [*rows, (BTC, T0_DOWN, 6, "10s", "ewma", 1.0, 2.0, T0_DOWN)]})
    assert [(row["horizon"], row["model"]) for row in r.latest_vol_forecasts(BTC)] == [
        (h, m) for h in ("10s", "60s") for m in ("har", "last")
    ]
    columns = ", ".join(TABLES["vol_forecasts"].names)
    assert pg.queries() == [
        (
            f"SELECT {columns} FROM vol_forecasts WHERE instrument = %s LATEST ON ts PARTITION BY horizon, model",
            (BTC,),
        )
    ]


BACKTEST_COLUMNS = ", ".join(TABLES["backtests"].names)


def test_backtests_newest_first_with_filters_and_one_by_id():
    stored = (
        T0_DOWN,
        "bt1",
        "follow",
        BTC,
        '["a.gz"]',
        1,
        2,
        "{}",
        '{"sharpe":null}',
        None,
        -1.0,
        2,
        None,
        0.5,
        1.0,
        None,
    )
    r, pg = reader({"SELECT": [stored]})
    [row] = r.backtests(limit=5, strategy="follow", instrument=BTC)
    assert row["ts"] == T0 - 789 and row["recordings"] == ["a.gz"] and row["metrics"] == {"sharpe": None}
    r.backtests()
    assert r.backtest("bt1")["settings"] == {}
    assert pg.queries() == [
        (
            f"SELECT {BACKTEST_COLUMNS} FROM backtests WHERE strategy = %s AND instrument = %s "
            "ORDER BY ts DESC, id LIMIT 5",
            ("follow", BTC),
        ),
        (f"SELECT {BACKTEST_COLUMNS} FROM backtests ORDER BY ts DESC, id LIMIT 100", ()),
        (f"SELECT {BACKTEST_COLUMNS} FROM backtests WHERE id = %s ORDER BY ts DESC LIMIT 1", ("bt1",)),
    ]


def test_latest_run_metrics():
    row = ("run9", T0_DOWN, 1, 10, 9, 1, 5.0, 1.0, 2.0, 0, 3, 2, 1)
    r, pg = reader({"SELECT run_id FROM": [("run9",)], "SELECT run_id, ts": [row]})
    assert r.latest_run_metrics() == [
        dict(zip(TABLES["run_metrics"].names, (*row[:1], T0 - 789, *row[2:]), strict=True))
    ]
    names = ", ".join(TABLES["run_metrics"].names)
    assert pg.queries() == [
        ("SELECT run_id FROM run_metrics ORDER BY ts DESC LIMIT 1", ()),
        (f"SELECT {names} FROM run_metrics WHERE run_id = %s LATEST ON ts PARTITION BY worker", ("run9",)),
    ]
