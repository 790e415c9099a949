"""The QuestDB backend: rows go in over ILP/HTTP with the ``questdb`` client; DDL and queries go over
the PostgreSQL wire protocol with psycopg.

What the SQL, the DDL and the ILP look like is decided by pure functions here (tested without a
server); ``PG`` and ``new_sender`` are the only parts that open connections. Written for QuestDB 8.0:
- TIMESTAMP holds microseconds: nanosecond times are stored floored to the microsecond and read
  back as ``us * 1000``. Keys stay unique because seq/digest/worker tell same-microsecond rows apart.
- ILP cannot carry bytes: BINARY columns are stored as base64 in a VARCHAR and decoded on read.
- ILP protocol version 1 (text), the one QuestDB 8 reads; version 2 needs QuestDB 9.
- Tables are created by DDL before the first ILP row, or ILP would create them itself with its own
  types, no dedup keys and a designated timestamp named ``timestamp``.
- WAL tables apply commits asynchronously: a flushed row becomes visible to queries shortly after.
"""

from __future__ import annotations

import base64
import math
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from questdb import Protocol, QuestDBError, Sender, TimestampNanos

from store.base import (
    Reader,
    Store,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
    Writer,
    instrument_table,
    select_columns,
)
from store.schema import BINARY, DOUBLE, INT, LONG, STRING, SYMBOL, TABLES, TIMESTAMP, Table
from store.url import QuestDBLocation, timeout_s

SQL_TYPES = {
    SYMBOL: "SYMBOL",
    TIMESTAMP: "TIMESTAMP",
    LONG: "LONG",
    INT: "INT",
    DOUBLE: "DOUBLE",
    STRING: "VARCHAR",
    BINARY: "VARCHAR",  # base64 text
}
ILP_PROTOCOL_VERSION = 1
EPOCH = datetime(1970, 1, 1)
ONE_US = timedelta(microseconds=1)

# -- DDL and SQL ---------------------------------------------------------------------------------


def create_sql(spec: Table) -> str:
    columns = ", ".join(f"{c.name} {SQL_TYPES[c.type]}" for c in spec.columns)
    keys = [spec.timestamp, *(k for k in spec.key if k != spec.timestamp)]  # the designated timestamp first
    return (
        f"CREATE TABLE IF NOT EXISTS {spec.name} ({columns}) "
        f"TIMESTAMP({spec.timestamp}) PARTITION BY DAY WAL DEDUP UPSERT KEYS({', '.join(keys)})"
    )


def add_column_sql(spec: Table, name: str) -> str:
    return f"ALTER TABLE {spec.name} ADD COLUMN {name} {SQL_TYPES[spec.types[name]]}"


def ensure_table(pg: PG, spec: Table) -> None:
    """Create the table, or add the columns the schema gained since it was created (e.g. new features)."""
    pg.execute(create_sql(spec))
    have = {row[0] for row in pg.execute(f"SHOW COLUMNS FROM {spec.name}")}
    for name in spec.names:
        if name not in have:
            try:
                pg.execute(add_column_sql(spec, name))
            except StoreError:  # another writer may have added it first (QuestDB 8.0 has no IF NOT EXISTS here)
                if name not in {row[0] for row in pg.execute(f"SHOW COLUMNS FROM {spec.name}")}:
                    raise


def to_param(ns: int) -> datetime:
    """A time bound as a query parameter: a naive UTC datetime (QuestDB's PG wire mis-binds aware ones),
    rounded up to the microsecond so that ``ts >= bound`` means the same on the stored microseconds."""
    return EPOCH + timedelta(microseconds=-(-ns // 1000))


def from_timestamp(value: datetime) -> int:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return (value - EPOCH) // ONE_US * 1000


def from_base64(value: str) -> bytes:
    return base64.b64decode(value)


# -- ILP -----------------------------------------------------------------------------------------


def add_rows(buffer: Any, spec: Table, rows: Sequence[Sequence[Any]]) -> None:
    """Append rows to a ``questdb`` client buffer: symbols as ILP tags, the designated timestamp as the
    line's nanosecond timestamp, NULLs (None, NaN) left out of the line."""
    ts = spec.names.index(spec.timestamp)
    symbols = [(i, c.name) for i, c in enumerate(spec.columns) if c.type == SYMBOL]
    fields = [(i, c.name, _ILP_VALUE[c.type]) for i, c in enumerate(spec.columns) if c.type != SYMBOL and i != ts]
    table = spec.name
    for row in rows:
        tags = {name: str(row[i]) for i, name in symbols if row[i] is not None}
        columns = {}
        for i, name, convert in fields:
            value = row[i]
            if value is not None and value == value:  # NaN != NaN
                # Most values are doubles already (the client takes no NumPy scalars): skip the call.
                columns[name] = value if type(value) is float and convert is float else convert(value)
        buffer.row(table, symbols=tags, columns=columns, at=TimestampNanos(int(row[ts])))


def _base64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


_ILP_VALUE: dict[str, Callable[[Any], Any]] = {
    TIMESTAMP: lambda v: TimestampNanos(int(v)),  # sent as microseconds by ILP v1
    LONG: int,
    INT: int,
    DOUBLE: float,
    STRING: str,
    BINARY: _base64,
}

# -- connections ---------------------------------------------------------------------------------


def pg_connect_kwargs(location: QuestDBLocation, timeout: float) -> dict[str, Any]:
    return {
        "host": location.host,
        "port": location.pg_port,
        "user": location.user,
        "password": location.password,
        "dbname": "qdb",
        "autocommit": True,  # QuestDB has no multi-statement transactions over PG wire
        "connect_timeout": max(2, math.ceil(timeout)),  # libpq's minimum is 2 s
        "options": f"-c statement_timeout={math.ceil(timeout * 1000)}",  # enforced by the server, in ms
        "prepare_threshold": None,  # no named server-side statements (nor the DEALLOCATEs that evict them)
    }


def new_sender(location: QuestDBLocation) -> Sender:
    sender = Sender(
        Protocol.Http,
        location.host,
        location.http_port,
        username=location.user,
        password=location.password,
        auto_flush=False,  # the writer decides when a batch goes
        protocol_version=ILP_PROTOCOL_VERSION,
    )
    sender.establish()
    return sender


def ping_http(location: QuestDBLocation, timeout: float) -> None:
    """Raise OSError unless an HTTP server answers on the ILP/HTTP port (any status will do: QuestDB
    answers /ping with 204, and with 401 where authentication is on)."""
    try:
        with urllib.request.urlopen(f"http://{location.host}:{location.http_port}/ping", timeout=timeout):
            pass
    except urllib.error.HTTPError:
        pass
    except urllib.error.URLError as e:
        raise e.reason if isinstance(e.reason, OSError) else OSError(str(e.reason)) from e


class PG:
    """One PG-wire connection, opened on first use. One that the server dropped (QuestDB closes idle
    ones after 5 minutes by default) is opened again and the statement retried once."""

    def __init__(self, location: QuestDBLocation, timeout: float) -> None:
        self._kwargs = pg_connect_kwargs(location, timeout)
        self._conn: Any = None
        self._lock = threading.Lock()  # a reader or writer may be shared by threads; one statement at a time

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            try:
                try:
                    return self._execute(sql, params)
                except psycopg.OperationalError:
                    if self._conn is None or not self._conn.broken:
                        raise
                    self.close()
                    return self._execute(sql, params)
            except psycopg.Error as e:
                if self._conn is not None and self._conn.broken:
                    self.close()
                if isinstance(e, psycopg.errors.QueryCanceled | psycopg.errors.ConnectionTimeout):
                    raise StoreTimeout(f"QuestDB did not answer in time (QF_STORE_TIMEOUT_S): {e}: {sql}") from e
                raise StoreError(f"QuestDB query failed: {e}: {sql}") from e

    def _execute(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        if self._conn is None:
            self._conn = psycopg.connect(**self._kwargs)
        cursor = self._conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# -- the store -----------------------------------------------------------------------------------


class QuestDBStore(Store):
    def __init__(self, location: QuestDBLocation) -> None:
        self.location = location
        query = "" if location.pg_port == 8812 else f"?pg_port={location.pg_port}"
        self.url = f"questdb://{location.host}:{location.http_port}{query}"

    def writer(self, batch_rows: int = 10_000, max_delay_s: float = 1.0) -> QuestDBWriter:
        return QuestDBWriter(PG(self.location, timeout_s()), lambda: new_sender(self.location), batch_rows, max_delay_s)

    def reader(self) -> QuestDBReader:
        return QuestDBReader(PG(self.location, timeout_s()))

    def check(self, write: bool = True) -> None:
        host, timeout = self.location.host, timeout_s()
        if write:
            try:
                ping_http(self.location, timeout)
            except OSError as e:
                why = e.strerror or str(e) or type(e).__name__
                raise StoreUnavailable(
                    self.url, f"no answer on the ILP/HTTP port {host}:{self.location.http_port}: {why}"
                ) from e
        try:
            psycopg.connect(**pg_connect_kwargs(self.location, timeout)).close()
        except psycopg.Error as e:
            why = " ".join(str(e).split())
            raise StoreUnavailable(
                self.url, f"no answer on the PG wire port {host}:{self.location.pg_port}: {why}"
            ) from e
        if write:
            pg = PG(self.location, timeout)
            try:
                for spec in TABLES.values():
                    ensure_table(pg, spec)
            except StoreError as e:
                raise StoreUnavailable(self.url, f"creating the tables failed: {' '.join(str(e).split())}") from e
            finally:
                pg.close()


class QuestDBWriter(Writer):
    def __init__(
        self, pg: PG, open_sender: Callable[[], Sender], batch_rows: int = 10_000, max_delay_s: float = 1.0
    ) -> None:
        super().__init__(batch_rows, max_delay_s)
        self._pg = pg
        self._open_sender = open_sender
        self._sender: Sender | None = None
        self._ready: set[str] = set()

    def _write_rows(self, spec: Table, rows: Sequence[Sequence[Any]]) -> None:
        if spec.name not in self._ready:
            ensure_table(self._pg, spec)
            self._ready.add(spec.name)
        try:
            if self._sender is None:
                self._sender = self._open_sender()
            buffer = self._sender.new_buffer()
            add_rows(buffer, spec, rows)
            self._sender.flush(buffer, transactional=True)  # one table, one HTTP request, one commit
        except (QuestDBError, TypeError, ValueError, OverflowError) as e:
            raise StoreError(f"writing {len(rows)} rows to {spec.name} failed: {e}") from e

    def _close(self) -> None:
        try:
            if self._sender is not None:
                self._sender.close(flush=False)
        finally:
            self._pg.close()


class QuestDBReader(Reader):
    placeholder = "%s"

    def __init__(self, pg: PG) -> None:
        super().__init__()
        self._pg = pg

    def close(self) -> None:
        self._pg.close()

    def latest_per_instrument(self, table: str, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
        spec = instrument_table(table)
        names = select_columns(spec, columns)
        sql = f"SELECT {', '.join(names)} FROM {spec.name} LATEST ON ts PARTITION BY instrument"
        return sorted(self._dicts(spec, names, sql, ()), key=lambda row: row["instrument"])

    def _table_exists(self, name: str) -> bool:
        return any(row[0] == name for row in self._pg.execute("SHOW TABLES"))

    def _fetch(self, sql: str, params: Sequence[Any] | dict[str, Any]) -> list[tuple]:
        return self._pg.execute(sql, params)

    def _time(self, ns: object, what: str) -> datetime:
        return to_param(super()._time(ns, what))

    def _decoder(self, column_type: str) -> Callable[[Any], Any] | None:
        return {TIMESTAMP: from_timestamp, BINARY: from_base64}.get(column_type)

    def _limit(self, limit: int, offset: int) -> str:
        # QuestDB's LIMIT lo, hi is the row range (lo, hi]; it has no OFFSET.
        return f"LIMIT {limit}" if offset == 0 else f"LIMIT {offset}, {offset + limit}"

    def _distinct_sql(self, spec: Table) -> str:
        return f"SELECT DISTINCT instrument FROM {spec.name}"

    def _latest_sql(self, spec: Table, names: Sequence[str]) -> str:
        # Rows sharing the last microsecond resolve by storage order: the one written last.
        return f"SELECT {', '.join(names)} FROM {spec.name} WHERE instrument = %s LATEST ON ts PARTITION BY instrument"

    def _latest_predictions_query(
        self, spec: Table, instrument: str, horizons: Sequence[str] | None
    ) -> tuple[str, Sequence[Any]]:
        where, params = "instrument = %s", [instrument]
        if horizons:
            where += f" AND horizon IN ({', '.join(['%s'] * len(horizons))})"
            params += horizons
        by = ", ".join(spec.key[3:])  # what follows (instrument, ts, seq) in the key: horizon (and model)
        sql = f"SELECT {', '.join(spec.names)} FROM {spec.name} WHERE {where} LATEST ON ts PARTITION BY {by}"
        return sql, params

    def _latest_per_worker_sql(self, spec: Table) -> str:
        return f"SELECT {', '.join(spec.names)} FROM {spec.name} WHERE run_id = %s LATEST ON ts PARTITION BY worker"

    def _downsample_query(
        self, spec: Table, names: Sequence[str], instrument: str, start: Any, end: Any, bucket_ns: int, unit: str
    ) -> tuple[str, Sequence[Any]]:
        lasts = ", ".join(f"last({name}) AS {name}" for name in names)
        sql = (
            f"SELECT ts, {lasts} FROM {spec.name} WHERE instrument = %s AND ts >= %s AND ts < %s "
            f"SAMPLE BY {unit} ALIGN TO CALENDAR"
        )
        return sql, (instrument, start, end)
