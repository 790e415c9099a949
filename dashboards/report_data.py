"""What the analysis report reads from the store: each instrument's book and features on regular time
grids (the last row of each bucket, carried forward over buckets with no row), through the store's
Reader, so SQLite and QuestDB serve it alike."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quantumflow.features import FEATURE_NAMES
from store import Reader
from store.schema import BOOK, LEVELS

# Bucket sizes the store can downsample by (they tile the clock), smallest first.
BUCKETS_NS = tuple(
    n * unit
    for unit, counts in (
        (10**6, (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500)),
        (10**9, (1, 2, 5, 10, 15, 20, 30)),
        (60 * 10**9, (1, 2, 5, 10, 15, 20, 30)),
        (3_600 * 10**9, (1, 2, 3, 4, 6, 12, 24)),
    )
    for n in counts
)
COARSE_BUCKETS = 600  # time columns of the heatmaps
FINE_BUCKETS = 20_000  # rows the correlations are computed on
LEVEL_COLUMNS = tuple(name for name in BOOK.names if name.startswith(("bid_", "ask_")))


@dataclass
class Grid:
    """Columns sampled at the ends of regular buckets: ``ts`` (bucket starts, ns) and one array per column
    (NaN before the first row); ``rows`` is how many store rows the buckets drew on (non-empty buckets)."""

    ts: np.ndarray
    columns: dict[str, np.ndarray]
    bucket_ns: int
    rows: int

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]


@dataclass
class InstrumentData:
    instrument: str
    start_ns: int
    end_ns: int
    feature_rows: int
    book_rows: int
    trade_rows: int
    features: Grid | None  # coarse: for the pictures over time
    fine: Grid | None  # fine: for the correlations with future returns
    book: Grid | None  # coarse: the 10 levels a side

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


def bucket_for(span_ns: int, buckets: int) -> int:
    """The smallest bucket size the store accepts that covers ``span_ns`` in at most ``buckets`` buckets."""
    for size in BUCKETS_NS:
        if span_ns <= size * buckets:
            return size
    return BUCKETS_NS[-1]


def read_instrument(reader: Reader, instrument: str) -> InstrumentData | None:
    """The instrument's grids, or None when it has no feature or book rows (trades only)."""
    spans = [_span(reader, table, instrument) for table in ("features", "book")]
    spans = [span for span in spans if span is not None]
    if not spans:
        return None
    start, end = min(s for s, _ in spans), max(e for _, e in spans) + 1
    coarse, fine = bucket_for(end - start, COARSE_BUCKETS), bucket_for(end - start, FINE_BUCKETS)
    counts = {table: reader.count(table, instrument) for table in ("features", "book", "trades")}
    has_features, has_book = counts["features"] > 0, counts["book"] > 0
    return InstrumentData(
        instrument,
        start,
        end,
        counts["features"],
        counts["book"],
        counts["trades"],
        _grid(reader, "features", instrument, FEATURE_NAMES, start, end, coarse) if has_features else None,
        _grid(reader, "features", instrument, FEATURE_NAMES, start, end, fine) if has_features else None,
        _grid(reader, "book", instrument, LEVEL_COLUMNS, start, end, coarse) if has_book else None,
    )


def _span(reader: Reader, table: str, instrument: str) -> tuple[int, int] | None:
    first = reader.range(table, instrument, 0, 2**63 - 1, columns=[], limit=1)
    last = reader.latest(table, instrument, columns=[])
    return (first[0]["ts"], last["ts"]) if first and last else None


def _grid(reader: Reader, table: str, instrument: str, names, start: int, end: int, bucket: int) -> Grid:
    first = start - start % bucket
    ts = np.arange(first, end, bucket, dtype=np.int64)
    rows = reader.downsample(table, instrument, list(names), start, end, bucket)
    at = np.searchsorted(ts, [row["ts"] for row in rows])
    columns = {}
    for name in names:
        values = np.full(len(ts), np.nan)
        values[at] = [np.nan if row[name] is None else row[name] for row in rows]
        columns[name] = _carried_forward(values, at)
    return Grid(ts, columns, bucket, len(rows))


def _carried_forward(values: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """Each empty bucket takes the value of the last bucket that had a row (a null in a row stays null)."""
    source = np.full(len(values), -1)
    source[filled] = filled
    source = np.maximum.accumulate(source)
    return np.where(source >= 0, values[np.maximum(source, 0)], np.nan)


def book_levels(book: Grid, side: str) -> tuple[np.ndarray, np.ndarray]:
    """(buckets, LEVELS) prices and sizes of one side."""
    prices = np.column_stack([book[f"{side}_price_{k}"] for k in range(1, LEVELS + 1)])
    sizes = np.column_stack([book[f"{side}_size_{k}"] for k in range(1, LEVELS + 1)])
    return prices, sizes
