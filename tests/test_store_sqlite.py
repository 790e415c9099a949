"""What only the SQLite store does (the behaviour both backends share is in tests/test_store.py): nanosecond
times kept exactly, ties on time broken by seq whatever the write order, the query time limit, a failed
batch kept for a retry, schema growth of an older file, and readers in other processes while writer threads
write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from store_rows import BTC, MS, T0, book_row, feature_row, trade_row

from store import StoreError, open_store
from store import sqlite as sqlite_store
from store.base import StoreTimeout
from store.schema import FEATURES

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(tmp_path):
    return open_store(f"sqlite:///{tmp_path}/store.db")


def test_times_keep_their_nanoseconds(store):
    with store.writer() as w:
        w.write("trades", [trade_row(BTC, T0 + 789, 1), trade_row(BTC, T0 + 790, 2)])
    with store.reader() as r:
        assert [(row["ts"], row["exchange_ts"]) for row in r.rows("trades")] == [
            (T0 + 789, T0 + 789 - MS),
            (T0 + 790, T0 + 790 - MS),
        ]
        assert [row["seq"] for row in r.range("trades", BTC, T0 + 790, T0 + 791)] == [2]
        assert r.downsample("trades", BTC, ["price"], T0, T0 + MS, 1_000) == [{"ts": T0, "price": 100.0}]


def test_rows_sharing_a_time_resolve_latest_by_seq_whatever_the_write_order(store):
    with store.writer() as w:
        w.write("features", [feature_row(BTC, T0, 11, mid=111.0), feature_row(BTC, T0, 10, mid=110.0)])
    with store.reader() as r:
        assert r.latest("features", BTC, ["mid"]) == {"instrument": BTC, "ts": T0, "seq": 11, "mid": 111.0}
        assert r.downsample("features", BTC, ["mid"], T0, T0 + MS, MS) == [{"ts": T0 - T0 % MS, "mid": 111.0}]


SLOW = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"  # never ends


def test_a_query_past_the_time_limit_is_stopped_as_a_store_timeout(store, monkeypatch):
    monkeypatch.setenv("QF_STORE_TIMEOUT_S", "0.2")
    with store.reader() as r:
        with pytest.raises(StoreTimeout, match=r"stopped after 0\.2 s"):
            r._fetch(SLOW, ())
        assert r._fetch("SELECT 1", ()) == [(1,)]  # the connection is still usable
    with store.reader() as r, pytest.raises(StoreError) as failed:
        r._fetch("SELECT nope", ())
    assert not isinstance(failed.value, StoreTimeout)


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


# -- concurrency: writer threads in this process, readers in other processes ----------------------

READER_SCRIPT = r"""
import json, os, sys, time
from pathlib import Path
from store import open_store
url, stop, seen, halfway = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
reader = open_store(url).reader()
stats = {"queries": 0, "errors": [], "decreasing": 0, "last": 0, "seen_halfway": None}
reader.count("book")
print("ready", flush=True)
deadline = time.monotonic() + 300  # a guard against a hung test, not a measurement
while not stop.exists() and time.monotonic() < deadline:
    try:
        n = reader.count("book")
        reader.instruments()
        reader.latest_per_instrument("book", ["bid_price_1"])
        reader.range("book", "w0:X", 0, 2**63 - 1, ["ask_price_1"], limit=50, offset=max(0, n // 3 - 50))
        reader.downsample("book", "w1:X", ["bid_price_1"], 0, 10**12, 10**9)
        stats["decreasing"] += n < stats["last"]
        stats["last"] = n
        stats["queries"] += 5
        if n >= halfway and stats["seen_halfway"] is None:
            stats["seen_halfway"] = n
            seen.touch()
    except Exception as e:
        stats["errors"].append(repr(e))
print(json.dumps(stats))
"""
WRITERS, BATCHES, ROWS = 3, 20, 50  # each writer: BATCHES batches of ROWS rows, half before the readers look


def test_reader_processes_query_while_writer_threads_write(store, tmp_path):
    """The writers write half their rows, wait until every reader has counted them, then write the rest:
    each reader queries while the writers are at work, and none sees an error or a count going down."""
    stop, total, halfway = tmp_path / "stop", WRITERS * BATCHES * ROWS, WRITERS * BATCHES * ROWS // 2
    seen = [tmp_path / f"seen{k}" for k in range(2)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER_SCRIPT, store.url, str(stop), str(path), str(halfway)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for path in seen
    ]
    for p in readers:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    errors: list[BaseException] = []
    halfway_seen = threading.Event()

    def write(worker: int) -> None:  # each Bytewax worker is a thread with its own writer
        try:
            with store.writer(batch_rows=200) as w:
                for k in range(BATCHES):
                    if k == BATCHES // 2 and not halfway_seen.wait(300):
                        raise TimeoutError("the readers never counted the first half")
                    w.write("book", [book_row(f"w{worker}:X", k * 10**7 + j, j) for j in range(ROWS)])
                    w.flush()
        except BaseException as e:
            errors.append(e)
            halfway_seen.set()  # let the other writers finish

    threads = [threading.Thread(target=write, args=(i,)) for i in range(WRITERS)]
    for t in threads:
        t.start()
    while not all(path.exists() for path in seen) and any(t.is_alive() for t in threads) and not errors:
        if any(p.poll() is not None for p in readers):
            break
        threading.Event().wait(0.02)
    halfway_seen.set()
    for t in threads:
        t.join()
    stop.touch()
    outs = [p.communicate(timeout=300) for p in readers]
    assert errors == []
    for (out, err), p in zip(outs, readers, strict=True):
        assert p.returncode == 0, err
        stats = json.loads(out)
        assert stats["errors"] == [] and stats["decreasing"] == 0
        assert halfway <= stats["seen_halfway"] < total  # it counted rows while more were still to come
    with store.reader() as r:
        assert r.count("book") == total


def test_processes_opening_the_same_new_file_at_once_all_succeed(tmp_path):
    """A cluster's processes open the store together; switching a new file to WAL must wait its turn."""
    path = tmp_path / "new.db"
    code = (
        "import sys, time; from store.sqlite import SQLiteStore; from pathlib import Path; "
        "start = float(sys.argv[2]); time.sleep(max(0, start - time.time())); SQLiteStore(Path(sys.argv[1])).check()"
    )
    start = time.time() + 2
    processes = [
        subprocess.Popen([sys.executable, "-c", code, str(path), str(start)], stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    errors = [process.communicate(timeout=60)[1] for process in processes]
    assert [process.returncode for process in processes] == [0] * 6, errors


def test_a_writer_checkpoints_the_wal_from_a_thread_of_its_own(store, monkeypatch):
    """Commits never copy the WAL back into the database (autocheckpoint off); the writer's own
    checkpointer does, passively, while the writer stays open."""
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_INTERVAL_S", 0.05)
    writer = store.writer()
    assert writer._conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    raw = b"x" * 500
    writer.write("dead_letters", [("binance", None, T0 + i, str(i), "reason", raw) for i in range(2_000)])
    writer.flush()
    deadline = time.monotonic() + 30
    # the checkpoint grows the file before it counts itself done: wait for both
    while (store.path.stat().st_size < 1_000_000 or writer._checkpoints.done < 1) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.path.stat().st_size >= 1_000_000  # the rows reached the database file, not only the WAL
    assert writer._checkpoints.done >= 1
    writer.close()
    assert not writer._checkpoints._thread.is_alive()
