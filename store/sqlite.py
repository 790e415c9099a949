"""The SQLite backend: one database file in WAL mode; every writer and reader has its own connection.

Writers take the write lock with BEGIN IMMEDIATE (so a busy database makes them wait, never fail
at COMMIT) and upsert a batch with one prepared INSERT OR REPLACE in one transaction. Readers never
block writers in WAL mode; a progress handler interrupts any query past the time limit.

A writer moves the WAL back into the database file from a thread of its own (a passive checkpoint
every ``CHECKPOINT_INTERVAL_S``), not in the commit that crosses SQLite's 1,000-page mark: that
commit would wait for the copy and its file sync, a stall of milliseconds in the flow's hot path.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from store.base import Reader, Store, StoreError, StoreTimeout, StoreUnavailable, Writer
from store.schema import BINARY, DOUBLE, INT, LONG, STRING, SYMBOL, TABLES, TIMESTAMP, Table
from store.url import timeout_s

SQL_TYPES = {
    SYMBOL: "TEXT",
    TIMESTAMP: "INTEGER",
    LONG: "INTEGER",
    INT: "INTEGER",
    DOUBLE: "REAL",
    STRING: "TEXT",
    BINARY: "BLOB",
}
PAGE_SIZE = 8192  # measured faster than 4096 for 68-column rows; applies to new files only
WRITER_BUSY_S = 60.0  # how long a writer waits for another writer's transaction
PROGRESS_STEPS = 10_000  # SQLite VM steps between checks of a reader's deadline
CHECKPOINT_INTERVAL_S = 1.0

# The flow's values may be NumPy scalars; np.float64 is a float already, the others need adapting.
for _type in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.bool_):
    sqlite3.register_adapter(_type, int)
sqlite3.register_adapter(np.float32, float)


def create_sql(spec: Table) -> str:
    columns = ", ".join(f"{c.name} {SQL_TYPES[c.type]}{'' if c.nullable else ' NOT NULL'}" for c in spec.columns)
    return f"CREATE TABLE IF NOT EXISTS {spec.name} ({columns}, PRIMARY KEY ({', '.join(spec.key)})) WITHOUT ROWID"


def upsert_sql(spec: Table) -> str:
    return f"INSERT OR REPLACE INTO {spec.name} ({', '.join(spec.names)}) VALUES ({', '.join('?' * len(spec.names))})"


def connect(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """A connection to the database file, made with its folder if need be; StoreUnavailable (naming the
    file and the cause) where that cannot be done."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StoreUnavailable(_url(path), f"{path.parent} is a file, not a folder") from None
    except OSError as e:
        raise StoreUnavailable(_url(path), f"cannot make the folder {path.parent}: {e.strerror or e}") from e
    conn = None
    try:
        conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        _set_wal(conn, busy_timeout_s)
        conn.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; a crash loses at most the last commits
    except sqlite3.Error as e:
        if conn is not None:
            conn.close()
        raise StoreUnavailable(_url(path), _cannot_open(path, e)) from e
    return conn


def _set_wal(conn: sqlite3.Connection, busy_timeout_s: float) -> None:
    """WAL mode, waiting as long as any other statement would: switching a new file's journal mode does
    not wait on the busy handler, so two processes opening the same new file at once (a cluster's) would
    see "database is locked" at once."""
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _cannot_open(path: Path, error: sqlite3.Error) -> str:
    """Why SQLite could not open the file, in the file system's words where SQLite has none."""
    if path.is_dir():
        return f"{path} is a folder, not a database file"
    if getattr(error, "sqlite_errorname", "") == "SQLITE_NOTADB":
        return f"{path} is not a SQLite database ({error})"
    try:
        with open(path, "ab"):
            pass
    except OSError as e:
        return f"cannot open {path} for writing: {e.strerror or e}"
    return f"{path}: {error}"


def _url(path: Path) -> str:
    return f"sqlite:///{path.absolute()}"  # the four-slash form whatever the user gave: it says where


def rollback(conn: sqlite3.Connection) -> None:
    """End a failed transaction, keeping the error that failed it (SQLite may have rolled back already)."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def ensure_table(conn: sqlite3.Connection, spec: Table) -> None:
    """Create the table, or add the columns the schema gained since it was created (e.g. new features)."""
    if not _missing(conn, spec):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(create_sql(spec))
        for column in _missing(conn, spec):
            if not column.nullable:
                raise StoreError(
                    f"table {spec.name} in this database lacks the required column {column.name}; "
                    "it was made by an incompatible version: move the file away and replay"
                )
            conn.execute(f"ALTER TABLE {spec.name} ADD COLUMN {column.name} {SQL_TYPES[column.type]}")
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise


def _missing(conn: sqlite3.Connection, spec: Table) -> list:
    have = {row[1] for row in conn.execute(f"PRAGMA table_info({spec.name})")}
    return [c for c in spec.columns if c.name not in have]


class SQLiteStore(Store):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = _url(path)

    def check(self, write: bool = True) -> None:
        conn = connect(self.path, timeout_s())
        try:
            if write:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("CREATE TABLE qf_write_check (x)")  # a write that fails on a read-only file
                rollback(conn)
                for spec in TABLES.values():
                    ensure_table(conn, spec)
            else:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
        except sqlite3.Error as e:
            raise StoreUnavailable(self.url, f"{self.path}: {e}") from e
        except StoreError as e:
            raise StoreUnavailable(self.url, str(e)) from e
        finally:
            rollback(conn)
            conn.close()

    def writer(self, batch_rows: int = 10_000, max_delay_s: float = 1.0) -> SQLiteWriter:
        return SQLiteWriter(self.path, batch_rows, max_delay_s)

    def reader(self) -> SQLiteReader:
        return SQLiteReader(self.path, timeout_s())


class SQLiteWriter(Writer):
    def __init__(self, path: Path, batch_rows: int = 10_000, max_delay_s: float = 1.0) -> None:
        super().__init__(batch_rows, max_delay_s)
        self._conn = connect(path, max(WRITER_BUSY_S, timeout_s()))
        self._conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._checkpoints = Checkpointer(path)
        self._upserts: dict[str, str] = {}

    def flush(self) -> None:
        """Every queued row of every table in one transaction (one commit a batch of the flow, not one a
        table); what a failed flush did not commit stays queued."""
        pending = self._pending
        if not pending:
            return
        self._write_tables({TABLES[name]: rows for name, rows in pending.items()})
        pending.clear()
        self._oldest = 0.0

    def _write_rows(self, spec: Table, rows: Sequence[Sequence[Any]]) -> None:
        self._write_tables({spec: rows})

    def _write_tables(self, tables: dict[Table, Sequence[Sequence[Any]]]) -> None:
        conn = self._conn
        spec, rows = next(iter(tables.items()))
        try:
            upserts = [(self._upsert(spec), spec, rows) for spec, rows in tables.items()]
            conn.execute("BEGIN IMMEDIATE")
            for sql, spec, rows in upserts:  # noqa: B007 (the table being written names a failure)
                conn.executemany(sql, rows)
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            rollback(conn)
            raise StoreError(f"writing {len(rows)} rows to {spec.name} failed: {e}") from e
        except BaseException:
            rollback(conn)
            raise

    def _upsert(self, spec: Table) -> str:
        """The table's prepared upsert, the table made (or given its new columns) first."""
        sql = self._upserts.get(spec.name)
        if sql is None:
            ensure_table(self._conn, spec)
            sql = self._upserts[spec.name] = upsert_sql(spec)
        return sql

    def _close(self) -> None:
        self._checkpoints.stop()
        self._conn.close()


class Checkpointer:
    """A passive checkpoint of the database every ``CHECKPOINT_INTERVAL_S``, from a thread and a
    connection of its own: it copies what no reader still needs and never waits for a lock."""

    def __init__(self, path: Path) -> None:
        self.done = 0  # checkpoints run
        self._path = path
        self._interval_s = CHECKPOINT_INTERVAL_S
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoints", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self._path, timeout=0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            return  # the writer's own connection reports what is wrong with the file
        with contextlib.closing(conn):
            while not self._stopped.wait(self._interval_s):
                with contextlib.suppress(sqlite3.Error):  # busy or gone: the next round tries again
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.done += 1


class SQLiteReader(Reader):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout
        self._deadline = math.inf
        self._lock = threading.Lock()
        self._conn = connect(path, timeout)
        self._conn.set_progress_handler(self._past_deadline, PROGRESS_STEPS)

    def close(self) -> None:
        with self._lock:  # freeing the connection under another thread's query can crash the process
            self._conn.close()

    def _past_deadline(self) -> bool:
        return time.monotonic() > self._deadline

    def _table_exists(self, name: str) -> bool:
        return bool(self._fetch("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))[0][0])

    def _fetch(self, sql: str, params: Sequence[Any] | dict[str, Any]) -> list[tuple]:
        with self._lock:  # one query at a time, each with its own deadline
            self._deadline = time.monotonic() + self._timeout
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as e:
                if "interrupted" in str(e):
                    raise StoreTimeout(f"query stopped after {self._timeout:g} s (QF_STORE_TIMEOUT_S): {sql}") from e
                raise StoreError(f"query failed: {e}: {sql}") from e
            finally:
                self._deadline = math.inf

    def _limit(self, limit: int, offset: int) -> str:
        return f"LIMIT {limit} OFFSET {offset}"

    def _distinct_sql(self, spec: Table) -> str:
        # A loose index scan: one primary-key seek per instrument instead of reading every row.
        t = spec.name
        return (
            f"WITH RECURSIVE i(x) AS (SELECT min(instrument) FROM {t} "
            f"UNION ALL SELECT (SELECT min(instrument) FROM {t} WHERE instrument > x) FROM i WHERE x IS NOT NULL) "
            "SELECT x FROM i WHERE x IS NOT NULL"
        )

    def _latest_sql(self, spec: Table, names: Sequence[str]) -> str:
        return f"SELECT {', '.join(names)} FROM {spec.name} WHERE instrument = ? ORDER BY ts DESC, seq DESC LIMIT 1"

    def _latest_predictions_query(
        self, spec: Table, instrument: str, horizons: Sequence[str] | None
    ) -> tuple[str, Sequence[Any]]:
        columns, t = ", ".join(spec.names), spec.name
        if horizons is None:  # the rows sharing the newest (ts, seq): two primary-key seeks
            newest = f"SELECT ts, seq FROM {t} WHERE instrument = ?1 ORDER BY ts DESC, seq DESC LIMIT 1"
            return f"SELECT {columns} FROM {t} WHERE instrument = ?1 AND (ts, seq) = ({newest})", (instrument,)
        # One backward primary-key scan per horizon, stopping at its first row.
        one = (
            f"SELECT * FROM (SELECT {columns} FROM {t} WHERE instrument = ? AND horizon = ? "
            "ORDER BY ts DESC, seq DESC LIMIT 1)"
        )
        return " UNION ALL ".join([one] * len(horizons)), [v for h in horizons for v in (instrument, h)]

    def _latest_per_worker_sql(self, spec: Table) -> str:
        # SQLite takes the bare columns of a max() aggregate from the row holding the maximum.
        columns = ", ".join("max(ts)" if name == "ts" else name for name in spec.names)
        return f"SELECT {columns} FROM {spec.name} WHERE run_id = ? GROUP BY worker"

    def _downsample_query(
        self, spec: Table, names: Sequence[str], instrument: str, start: Any, end: Any, bucket_ns: int, unit: str
    ) -> tuple[str, dict[str, Any]]:
        columns = ", ".join(names)
        bucket = "(ts - ((ts % :bucket) + :bucket) % :bucket)"  # floor to a multiple of the bucket, sign-safe
        # A row is its bucket's last when the next row (by ts, seq: primary-key order, so no sort) is in
        # another bucket.
        sql = (
            f"SELECT qf_bucket, {columns} FROM (SELECT {bucket} AS qf_bucket, {columns}, "
            f"lead({bucket}) OVER (ORDER BY ts, seq) AS qf_next "
            f"FROM {spec.name} WHERE instrument = :instrument AND ts >= :start AND ts < :end) "
            "WHERE qf_next IS NULL OR qf_next != qf_bucket"
        )
        return sql, {"bucket": bucket_ns, "instrument": instrument, "start": start, "end": end}
