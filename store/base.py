"""The store interface both backends implement: a batching writer and a reader.

The reader builds every query from names checked against ``store.schema``; values travel only as
query parameters. What differs between backends (SQL dialect, time parameters, decoding) is a
handful of hooks.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from quantumflow.horizons import horizon_order
from store.schema import BACKTEST_JSON, TABLES, Table

MAX_ROWS = 100_000  # the most rows one reader call returns
MAX_HORIZONS = 64  # the most horizons one predictions query names
DAY_NS = 86_400 * 10**9
# Downsampling units, largest first: (ns, QuestDB SAMPLE BY letter, how many make the next unit up).
BUCKET_UNITS = (
    (3_600 * 10**9, "h", 24),
    (60 * 10**9, "m", 60),
    (10**9, "s", 60),
    (10**6, "T", 1000),
    (10**3, "U", 1000),
)


class StoreError(Exception):
    """A store operation that failed, or a bad table, column or argument asked of the store."""


class StoreConfigError(StoreError):
    """A bad store URL or store setting: the user's to correct."""


class StoreUnavailable(StoreError):
    """A store that cannot be opened, reached or written, found before any row is written."""

    def __init__(self, url: str, cause: str) -> None:
        super().__init__(f"store {url} cannot be used: {cause}")
        self.url = url
        self.cause = cause


class StoreTimeout(StoreError):
    """A query the store did not answer within its time limit (``QF_STORE_TIMEOUT_S``)."""


def table_spec(name: str) -> Table:
    spec = TABLES.get(name) if isinstance(name, str) else None
    if spec is None:
        raise StoreError(f"unknown table {name!r}; tables: {', '.join(TABLES)}")
    return spec


def instrument_table(name: str) -> Table:
    spec = table_spec(name)
    if not spec.per_instrument:
        per = ", ".join(t.name for t in TABLES.values() if t.per_instrument)
        raise StoreError(f"table {name!r} is not kept per instrument; per-instrument tables: {per}")
    return spec


def select_columns(spec: Table, columns: Sequence[str] | None, keys: bool = True) -> tuple[str, ...]:
    """The columns to return: all of them, or the key columns followed by those asked for."""
    if columns is None:
        return spec.names
    if isinstance(columns, str):
        raise StoreError(f"columns must be a list of names, not the string {columns!r}")
    known = set(spec.names)
    for name in columns:
        if name not in known:
            raise StoreError(f"table {spec.name!r} has no column {name!r}")
    chosen = [*spec.key] if keys else []
    return tuple(dict.fromkeys([*chosen, *columns]))


def check_int(what: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise StoreError(f"{what} must be an integer from {low} to {high}, not {value!r}")
    return value


def check_horizons(horizons: Sequence[str] | None) -> list[str] | None:
    """None (every horizon) or the distinct horizon names asked for, in their order."""
    if horizons is None:
        return None
    if isinstance(horizons, str) or not all(isinstance(h, str) and h for h in horizons):
        raise StoreError(f"horizons must be a list of non-empty names, not {horizons!r}")
    chosen = list(dict.fromkeys(horizons))
    if len(chosen) > MAX_HORIZONS:
        raise StoreError(f"at most {MAX_HORIZONS} horizons a query, not {len(chosen)}")
    return chosen


def bucket_unit(bucket_ns: object) -> tuple[int, str]:
    """``bucket_ns`` as (count, unit letter) for QuestDB's SAMPLE BY.

    Only sizes that tile the next unit up exactly are accepted (250 ms, 15 s, 5 min, 1 h, 1 day; not
    7 s or 90 s), so every bucket starts at a multiple of its size since the epoch under either
    backend, whichever rule QuestDB's ALIGN TO CALENDAR applies to the first bucket.
    """
    check_int("bucket_ns", bucket_ns, 1, DAY_NS)
    for unit_ns, letter, per_next in BUCKET_UNITS:
        if bucket_ns % unit_ns == 0:
            count = bucket_ns // unit_ns
            if per_next % count == 0:
                return count, letter
            break
    raise StoreError(
        f"bucket_ns={bucket_ns} does not tile the clock: use a whole number of microseconds, milliseconds, "
        "seconds, minutes or hours that divides the next unit up (e.g. 250 ms, 15 s, 5 min, 1 h), or one day"
    )


class Store(ABC):
    """A configured store; ``writer()`` and ``reader()`` each open their own connection."""

    url: str

    @abstractmethod
    def writer(self, batch_rows: int = 10_000, max_delay_s: float = 1.0) -> Writer: ...

    @abstractmethod
    def reader(self) -> Reader: ...

    @abstractmethod
    def check(self, write: bool = True) -> None:
        """Open the store and, for ``write``, create its tables (or add the columns they lack), so that a
        store that cannot be used fails before a flow or a server starts: StoreUnavailable, naming the
        URL and the cause."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


class Writer(ABC):
    """Batched, idempotent upserts by natural key.

    ``write`` queues rows (tuples in the column order of ``store.schema``); a table's rows go to the
    store when it has ``batch_rows`` of them queued, when a ``write`` comes ``max_delay_s`` after the
    oldest queued row, and on ``flush``/``close``. Writing a row again with the same key replaces it.
    """

    def __init__(self, batch_rows: int = 10_000, max_delay_s: float = 1.0) -> None:
        self.batch_rows = check_int("batch_rows", batch_rows, 1, 10**7)
        if not max_delay_s >= 0:
            raise StoreError(f"max_delay_s must be a number of seconds >= 0, not {max_delay_s!r}")
        self.max_delay_s = max_delay_s
        self._pending: dict[str, list[Sequence[Any]]] = {}
        self._oldest = 0.0  # when the oldest queued row was queued (time.monotonic)
        self._closed = False

    def write(self, table: str, rows: Sequence[Sequence[Any]]) -> None:
        queued = self.queue(table, rows)
        if len(queued) >= self.batch_rows:
            self._send(table)
        if self._pending and time.monotonic() - self._oldest >= self.max_delay_s:
            self.flush()

    def queue(self, table: str, rows: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
        """Check and queue rows without sending any (``flush`` sends them); the table's queue."""
        if self._closed:
            raise StoreError("this writer is closed")
        spec = table_spec(table)
        if not isinstance(rows, list):
            rows = list(rows)
        width = len(spec.columns)
        for row in rows:
            if len(row) != width:
                raise StoreError(f"a {spec.name} row has {len(row)} values; expected {width}: {', '.join(spec.names)}")
        if not self._pending:
            self._oldest = time.monotonic()
        queued = self._pending.setdefault(spec.name, [])
        queued.extend(rows)
        if not queued:
            del self._pending[spec.name]
        return queued

    def discard(self) -> None:
        """Drop the queued rows (a writer given up on closes without sending them)."""
        self._pending.clear()

    def flush(self) -> None:
        for name in list(self._pending):
            self._send(name)

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            self._close()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:  # keep the error that ended the block; what was queued is not sent
            self.discard()
            self.close()

    def _send(self, name: str) -> None:
        rows = self._pending.pop(name)
        spec = TABLES[name]
        for start in range(0, len(rows), self.batch_rows):
            try:
                self._write_rows(spec, rows[start : start + self.batch_rows])
            except Exception:
                self._pending[name] = rows[start:]  # kept, so a later flush can retry them
                raise
        if not self._pending:
            self._oldest = 0.0

    @abstractmethod
    def _write_rows(self, table: Table, rows: Sequence[Sequence[Any]]) -> None:
        """Upsert one batch of rows in one transaction."""

    @abstractmethod
    def _close(self) -> None:
        """Release connections."""


class Reader(ABC):
    """Queries for the API, the dashboards and the tests. Every answer is a list of dicts (or one dict)
    keyed by column name, with timestamps as int ns; per-instrument answers include the key columns
    (instrument, ts, seq) before the columns asked for."""

    placeholder = "?"

    def __init__(self) -> None:
        self._found: set[str] = set()  # tables seen to exist (readers create nothing: a table appears
        # with its writer's first batch, and until then every answer from it is empty)

    # -- the interface ---------------------------------------------------------------------------

    def instruments(self) -> list[str]:
        """Every instrument with a row in book, features, trades or resyncs, sorted."""
        found: set[str] = set()
        for spec in TABLES.values():
            if spec.per_instrument and self._exists(spec):
                found.update(row[0] for row in self._fetch(self._distinct_sql(spec), ()))
        return sorted(found)

    def latest(self, table: str, instrument: str, columns: Sequence[str] | None = None) -> dict[str, Any] | None:
        """The instrument's row with the greatest (ts, seq), or None."""
        spec = instrument_table(table)
        names = select_columns(spec, columns)
        rows = self._dicts(spec, names, self._latest_sql(spec, names), (instrument,))
        return rows[0] if rows else None

    def latest_per_instrument(self, table: str, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Each instrument's latest row, sorted by instrument."""
        spec = instrument_table(table)
        if not self._exists(spec):
            return []
        found = (self.latest(table, row[0], columns) for row in self._fetch(self._distinct_sql(spec), ()))
        return sorted((row for row in found if row is not None), key=lambda row: row["instrument"])

    def range(
        self,
        table: str,
        instrument: str,
        start_ns: int,
        end_ns: int,
        columns: Sequence[str] | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """The instrument's rows with start_ns <= ts < end_ns, ordered by (ts, seq), paged by limit and offset."""
        spec = instrument_table(table)
        return self._time_page(spec, select_columns(spec, columns), instrument, start_ns, end_ns, limit, offset)

    def downsample(
        self, table: str, instrument: str, columns: Sequence[str], start_ns: int, end_ns: int, bucket_ns: int
    ) -> list[dict[str, Any]]:
        """The last value of each column per time bucket (the value on the bucket's latest row, even if
        null), for start_ns <= ts < end_ns; ``ts`` is the bucket's start, a multiple of bucket_ns."""
        spec = instrument_table(table)
        names = select_columns(spec, columns, keys=False)
        if not names or set(names) & set(spec.key):
            raise StoreError(f"downsample needs one or more non-key columns of {spec.name}, not {columns!r}")
        count, unit = bucket_unit(bucket_ns)
        start, end = self._time(start_ns, "start_ns"), self._time(end_ns, "end_ns")
        if (end_ns - start_ns) // bucket_ns > MAX_ROWS:
            raise StoreError(f"downsample would return more than {MAX_ROWS} buckets; use a larger bucket_ns")
        sql, params = self._downsample_query(spec, names, instrument, start, end, bucket_ns, f"{count}{unit}")
        return sorted(self._dicts(spec, ("ts", *names), sql, params), key=lambda row: row["ts"])

    def latest_predictions(self, instrument: str, horizons: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The instrument's latest prediction per horizon, in the models' order of horizons (10, 50, 1s).
        With ``horizons`` None, the predictions made on its most recent predicted event (the flow
        predicts every horizon on each event); with horizons named, the latest row of each of those,
        wherever it lies."""
        spec = TABLES["predictions"]
        chosen = check_horizons(horizons)
        if chosen == [] or not self._exists(spec):
            return []
        sql, params = self._latest_predictions_query(spec, instrument, chosen)
        rows = self._dicts(spec, spec.names, sql, params)
        return sorted(
            rows if chosen is not None else _of_newest_event(rows), key=lambda row: horizon_order(row["horizon"])
        )

    def prediction_range(
        self,
        instrument: str,
        start_ns: int,
        end_ns: int,
        horizons: Sequence[str] | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """The instrument's predictions with start_ns <= ts < end_ns, of the named horizons (None: all),
        ordered by (ts, seq, horizon), paged by limit and offset."""
        spec = TABLES["predictions"]
        chosen = check_horizons(horizons)
        if chosen == []:
            return []
        return self._time_page(spec, spec.names, instrument, start_ns, end_ns, limit, offset, chosen)

    def latest_vol_forecasts(self, instrument: str) -> list[dict[str, Any]]:
        """The volatility forecasts made on the instrument's most recent forecast event: one row per
        horizon and model, sorted by both."""
        spec = TABLES["vol_forecasts"]
        if not self._exists(spec):
            return []
        sql, params = self._latest_predictions_query(spec, instrument, None)
        rows = self._dicts(spec, spec.names, sql, params)
        return sorted(_of_newest_event(rows), key=lambda row: (row["horizon"], row["model"]))

    def vol_forecast_range(
        self,
        instrument: str,
        start_ns: int,
        end_ns: int,
        horizons: Sequence[str] | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """The instrument's volatility forecasts with start_ns <= ts < end_ns, of the named horizons
        (None: all), ordered by (ts, seq, horizon, model), paged by limit and offset."""
        spec = TABLES["vol_forecasts"]
        chosen = check_horizons(horizons)
        if chosen == []:
            return []
        return self._time_page(spec, spec.names, instrument, start_ns, end_ns, limit, offset, chosen)

    def horizons(self, instrument: str) -> list[str]:
        """The distinct horizons of the instrument's stored predictions, sorted by name. It reads all of the
        instrument's predictions: callers that ask often keep the answer a while."""
        spec = TABLES["predictions"]
        if not self._exists(spec):
            return []
        sql = f"SELECT DISTINCT horizon FROM {spec.name} WHERE instrument = {self.placeholder}"
        return sorted(row[0] for row in self._fetch(sql, (instrument,)))

    def latest_run_metrics(self) -> list[dict[str, Any]]:
        """Each worker's latest run_metrics row in the most recent run (the run of the newest row), by worker."""
        spec = TABLES["run_metrics"]
        if not self._exists(spec):
            return []
        newest = self._fetch(f"SELECT run_id FROM {spec.name} ORDER BY ts DESC {self._limit(1, 0)}", ())
        if not newest:
            return []
        rows = self._dicts(spec, spec.names, self._latest_per_worker_sql(spec), (newest[0][0],))
        return sorted(rows, key=lambda row: row["worker"])

    def count(self, table: str, instrument: str | None = None) -> int:
        spec = table_spec(table) if instrument is None else instrument_table(table)
        if not self._exists(spec):
            return 0
        if instrument is None:
            return int(self._fetch(f"SELECT count(*) FROM {spec.name}", ())[0][0])
        sql = f"SELECT count(*) FROM {spec.name} WHERE instrument = {self.placeholder}"
        return int(self._fetch(sql, (instrument,))[0][0])

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest dead letters, newest first, with their raw bytes."""
        spec = TABLES["dead_letters"]
        check_int("limit", limit, 0, MAX_ROWS)
        if limit == 0:
            return []
        sql = f"SELECT {', '.join(spec.names)} FROM {spec.name} ORDER BY ts DESC, feed, digest {self._limit(limit, 0)}"
        return self._dicts(spec, spec.names, sql, ())

    def backtests(
        self, limit: int = 100, strategy: str | None = None, instrument: str | None = None
    ) -> list[dict[str, Any]]:
        """The stored backtests, newest first (by ts, then id), of the strategy and the instrument given (None:
        any), at most ``limit``; recordings, settings, metrics and benchmarks decoded from JSON."""
        spec = TABLES["backtests"]
        check_int("limit", limit, 0, MAX_ROWS)
        filters = {
            name: value for name, value in (("strategy", strategy), ("instrument", instrument)) if value is not None
        }
        for name, value in filters.items():
            _check_name(name, value)
        if limit == 0:
            return []
        where = " AND ".join(f"{name} = {self.placeholder}" for name in filters)
        sql = (
            f"SELECT {', '.join(spec.names)} FROM {spec.name}{' WHERE ' if where else ''}{where} "
            f"ORDER BY ts DESC, id {self._limit(limit, 0)}"
        )
        return [_json_decoded(row) for row in self._dicts(spec, spec.names, sql, list(filters.values()))]

    def backtest(self, id: str) -> dict[str, Any] | None:
        """The backtest stored under ``id`` (the newest, should one id have been saved at two times), or None."""
        spec = TABLES["backtests"]
        _check_name("id", id)
        columns, p = ", ".join(spec.names), self.placeholder
        sql = f"SELECT {columns} FROM {spec.name} WHERE id = {p} ORDER BY ts DESC {self._limit(1, 0)}"
        rows = self._dicts(spec, spec.names, sql, (id,))
        return _json_decoded(rows[0]) if rows else None

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of a table, ordered by its key (for tests comparing stores)."""
        spec = table_spec(table)
        sql = f"SELECT {', '.join(spec.names)} FROM {spec.name} ORDER BY {', '.join(spec.key)}"
        return self._dicts(spec, spec.names, sql, ())

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- shared plumbing -------------------------------------------------------------------------

    def _exists(self, spec: Table) -> bool:
        if spec.name not in self._found and self._table_exists(spec.name):
            self._found.add(spec.name)
        return spec.name in self._found

    def _dicts(self, spec: Table, names: Sequence[str], sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        if not self._exists(spec):
            return []
        rows = self._fetch(sql, params)
        types = spec.types
        decoders = [(i, f) for i, name in enumerate(names) if (f := self._decoder(types[name])) is not None]
        if decoders:
            rows = [_decode(row, decoders) for row in rows]
        return [dict(zip(names, row, strict=True)) for row in rows]

    def _time_page(
        self,
        spec: Table,
        names: Sequence[str],
        instrument: str,
        start_ns: int,
        end_ns: int,
        limit: int,
        offset: int,
        horizons: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """One page of an instrument's rows with start_ns <= ts < end_ns, in key order."""
        start, end = self._time(start_ns, "start_ns"), self._time(end_ns, "end_ns")
        check_int("limit", limit, 0, MAX_ROWS)
        check_int("offset", offset, 0, 2**62)
        if limit == 0:
            return []
        p = self.placeholder
        where = f"instrument = {p} AND ts >= {p} AND ts < {p}"
        params: list[Any] = [instrument, start, end]
        if horizons:
            where += f" AND horizon IN ({', '.join([p] * len(horizons))})"
            params += horizons
        order = ", ".join(spec.key[1:])
        sql = f"SELECT {', '.join(names)} FROM {spec.name} WHERE {where} ORDER BY {order} {self._limit(limit, offset)}"
        return self._dicts(spec, names, sql, params)

    def _time(self, ns: object, what: str) -> Any:
        """A time bound as this backend's query parameter."""
        return check_int(what, ns, -(2**63), 2**63 - 1)

    def _decoder(self, column_type: str) -> Callable[[Any], Any] | None:
        """How to turn a fetched value of this type into the interface's type (None: as fetched)."""
        return None

    # -- what each backend provides --------------------------------------------------------------

    @abstractmethod
    def _table_exists(self, name: str) -> bool:
        """Whether the table has been created (by a writer)."""

    @abstractmethod
    def _fetch(self, sql: str, params: Sequence[Any] | dict[str, Any]) -> list[tuple]:
        """Run one query under the store's time limit."""

    @abstractmethod
    def _limit(self, limit: int, offset: int) -> str:
        """The clause taking ``limit`` rows after skipping ``offset`` (both checked integers)."""

    @abstractmethod
    def _distinct_sql(self, spec: Table) -> str:
        """The distinct instruments of a per-instrument table, one per row."""

    @abstractmethod
    def _latest_sql(self, spec: Table, names: Sequence[str]) -> str:
        """One instrument's latest row (parameter: the instrument)."""

    @abstractmethod
    def _latest_predictions_query(
        self, spec: Table, instrument: str, horizons: Sequence[str] | None
    ) -> tuple[str, Sequence[Any]]:
        """SQL and parameters giving the instrument's latest row (of ``spec``, predictions or vol_forecasts)
        of each horizon named (at least one), or with None at least the rows of its most recent event."""

    @abstractmethod
    def _latest_per_worker_sql(self, spec: Table) -> str:
        """Each worker's latest run_metrics row of one run (parameter: the run id), all columns."""

    @abstractmethod
    def _downsample_query(
        self, spec: Table, names: Sequence[str], instrument: str, start: Any, end: Any, bucket_ns: int, unit: str
    ) -> tuple[str, Sequence[Any] | dict[str, Any]]:
        """SQL and parameters giving (bucket start, last value of each column) per non-empty bucket, by time."""


def _check_name(what: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise StoreError(f"{what} must be a non-empty string, not {value!r}")


def _json_decoded(row: dict[str, Any]) -> dict[str, Any]:
    for name in BACKTEST_JSON:
        if row[name] is not None:
            row[name] = json.loads(row[name])
    return row


def _decode(row: Sequence[Any], decoders: list[tuple[int, Callable[[Any], Any]]]) -> list[Any]:
    out = list(row)
    for i, f in decoders:
        if out[i] is not None:
            out[i] = f(out[i])
    return out


def _of_newest_event(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows made on the most recent event (ts, seq) among ``rows``: the latest per group may be older."""
    if not rows:
        return rows
    newest = max((row["ts"], row["seq"]) for row in rows)
    return [row for row in rows if (row["ts"], row["seq"]) == newest]
