"""The live dashboard's data: one reader per process, polled once per refresh, shared by every browser session.

A background thread reads what changed in the store since its last poll (new book, trade and feature rows
after a cursor; the latest predictions; every few seconds the matured predictions for the scores; every
``backtests_every_s`` the newest stored backtests) for the instruments that some session shows, and keeps a
bounded window of each. Sessions never query the store: they take the rows appended since their last look
(``Series.since``) and stream them into their charts. A store that fails is noted (``LiveFeed.error``), its
reader dropped and opened again at the next poll.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import orjson

from dashboards.live_settings import LiveSettings
from models.metrics import reliability, report
from operators.arbitrage import Opportunity, Quote, find_opportunities
from quantumflow.horizons import horizon_order
from store import Reader, Store, open_store
from store.base import MAX_ROWS
from store.schema import LEVELS

log = logging.getLogger("quantumflow.dashboard")

BOOK_COLUMNS = [f"{s}_{what}_{k}" for s in ("bid", "ask") for what in ("price", "size") for k in range(1, LEVELS + 1)]
TOP = ["bid_price_1", "bid_size_1", "ask_price_1", "ask_size_1"]
OFI_COLUMNS = [f"ofi_{k}_1s" for k in range(1, LEVELS + 1)]
FEATURE_COLUMNS = [
    "mid",
    "spread",
    "spread_bps",
    "micro_price",
    "depth_imbalance_1",
    "depth_imbalance_5",
    "depth_imbalance_10",
    *OFI_COLUMNS,
    "realized_variance_10s",
    "realized_variance_60s",
    "event_rate_1s",
]
TRADE_COLUMNS = ["price", "size", "side"]
INSTRUMENTS_EVERY_S = 5.0  # how often the list of instruments is read again
IDLE_AFTER_S = 30.0  # an instrument no session has asked for this long is no longer polled
ROLLING_PREDICTIONS = 500  # the rolling accuracy is that of the last this many matured predictions
SAMPLES = 240  # heatmap columns and chart points across the window
BACKTESTS_SHOWN = 5  # the newest stored backtests of an instrument that the paper strategy panel lists


class Series:
    """Rows appended in time order, the oldest dropped past ``keep``; ``end`` counts every row ever appended,
    so a session asks for the rows after the position it last saw."""

    def __init__(self, keep: int) -> None:
        self.rows: deque[tuple] = deque(maxlen=keep)
        self.end = 0

    def extend(self, rows: Iterable[tuple]) -> None:
        for row in rows:
            self.rows.append(row)
            self.end += 1

    def since(self, position: int) -> tuple[list[tuple], bool]:
        """The rows after ``position`` and whether they are the whole series (the session must start over:
        it saw nothing yet, or what it missed was dropped)."""
        missed = self.end - position
        if position < 0 or missed > len(self.rows):
            return list(self.rows), True
        return (list(self.rows)[len(self.rows) - missed :] if missed else []), False


@dataclass
class Scores:
    """Rolling scores of one horizon's matured predictions."""

    n: int
    accuracy: float
    macro_f1: float
    calibration: dict[str, list]  # models.metrics.reliability's bins


@dataclass
class InstrumentData:
    """What the dashboard keeps of one instrument; written by the poller under the feed's lock."""

    instrument: str
    bucket_ns: int
    book: dict[str, Any] | None = None  # the latest book row
    features: dict[str, Any] | None = None  # the latest features row
    predictions: list[dict[str, Any]] = field(default_factory=list)  # the latest per horizon
    vol_forecasts: list[dict[str, Any]] = field(default_factory=list)  # the latest per horizon and model
    heat: Series = field(default_factory=lambda: Series(SAMPLES * 2 * LEVELS))  # (ts, price, size, side)
    mids: Series = field(default_factory=lambda: Series(SAMPLES * 4))  # (ts, mid)
    trades: Series = field(default_factory=lambda: Series(SAMPLES * 8))  # (ts, price, size, side)
    micro: Series = field(default_factory=lambda: Series(SAMPLES))  # (ts, vol_10s_bps, spread_bps, event_rate)
    weights: Series = field(default_factory=lambda: Series(SAMPLES))  # (ts, {model: mean weight over horizons})
    accuracy: Series = field(default_factory=lambda: Series(SAMPLES))  # (ts, {horizon: accuracy})
    scores: dict[str, Scores] = field(default_factory=dict)
    asked: float = 0.0  # when a session last asked for it (monotonic)
    cursors: dict[str, tuple[int, int]] = field(default_factory=dict)  # table -> last (ts, seq) read
    buckets: dict[str, int] = field(default_factory=dict)  # series -> last time bucket sampled
    scored: float = -1e18  # when the scores were last computed (monotonic)
    backtests: list[dict[str, Any]] | None = None  # the newest stored, newest first; None: not read yet
    backtests_read: float = -1e18  # when they were last read (monotonic)

    @property
    def latest_ts(self) -> int | None:
        times = [row["ts"] for row in (self.book, self.features) if row is not None]
        return max(times) if times else None


class LiveFeed:
    """The process's one poller of the store (``LiveFeed.shared``)."""

    _shared: ClassVar[dict[str, LiveFeed]] = {}
    _shared_lock = threading.Lock()

    def __init__(self, settings: LiveSettings, store: Store | None = None) -> None:
        self.settings = settings
        self.store = store or open_store(settings.store_url)
        self.lock = threading.Lock()
        self.instruments: list[str] = []
        self.data: dict[str, InstrumentData] = {}
        self.opportunities: list[Opportunity] = []
        self.error: str | None = None  # why the last poll failed; None once one succeeds
        self.polled_ns = 0  # wall clock of the last successful poll
        self.polls = 0
        self.listeners: set[Callable[[], None]] = set()  # told after each poll (sessions schedule their refresh)
        self._reader: Reader | None = None
        self._listed = -1e18
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.bucket_ns = max(250_000_000, int(settings.window_s * 1e9 / SAMPLES) // 250_000_000 * 250_000_000)

    @classmethod
    def shared(cls, settings: LiveSettings) -> LiveFeed:
        """The feed of this process for these settings, started on first use."""
        key = repr(settings)
        with cls._shared_lock:
            feed = cls._shared.get(key)
            if feed is None:
                feed = cls._shared[key] = cls(settings)
                feed.start()
            return feed

    # -- what sessions call ----------------------------------------------------------------------

    def watch(self, instrument: str) -> InstrumentData:
        """The instrument's data (polled from now on while sessions keep asking for it)."""
        with self.lock:
            data = self.data.get(instrument)
            if data is None:
                data = self.data[instrument] = InstrumentData(instrument, self.bucket_ns)
            data.asked = time.monotonic()
            return data

    def listen(self, listener: Callable[[], None]) -> None:
        with self.lock:
            self.listeners.add(listener)

    def forget(self, listener: Callable[[], None]) -> None:
        with self.lock:
            self.listeners.discard(listener)

    def read(self, instrument: str, take: Callable[[InstrumentData], Any]) -> Any:
        """``take(data)`` under the lock, so that it sees one poll's state whole."""
        data = self.watch(instrument)
        with self.lock:
            return take(data)

    # -- the poller ------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="live-dashboard-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._drop_reader()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.poll()
            with self.lock:
                listeners = list(self.listeners)
            for listener in listeners:
                try:
                    listener()
                except Exception:  # a session closing as it is told; the others still are
                    log.debug("a session could not be told of a poll", exc_info=True)
            self._stop.wait(max(0.0, self.settings.refresh_s - (time.monotonic() - started)))

    def poll(self) -> None:
        """One round of reading the store; a failure is kept in ``error`` and the reader opened again next time."""
        try:
            reader = self._reader or self._open()
            now = time.monotonic()
            if now - self._listed >= INSTRUMENTS_EVERY_S or not self.instruments:
                instruments = reader.instruments()
                self._listed = now
            else:
                instruments = self.instruments
            with self.lock:
                watched = [d for d in self.data.values() if now - d.asked < IDLE_AFTER_S]
            for data in watched:
                self._poll_instrument(reader, data, now)
            tops = reader.latest_per_instrument("book", TOP)
            quotes = [Quote(r["instrument"], r["ts"], *(r[c] for c in TOP)) for r in tops if None not in r.values()]
            opportunities = find_opportunities(quotes, time.time_ns(), self.settings.arbitrage)
            with self.lock:
                self.instruments = instruments
                self.opportunities = opportunities
                self.error = None
                self.polled_ns = time.time_ns()
                self.polls += 1
        except Exception as error:  # sqlite3, psycopg, OS and store errors alike: the banner says which
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            if self.error != reason:
                log.warning("the store cannot be read: %s", reason)
            with self.lock:
                self.error = reason
            self._drop_reader()

    def _open(self) -> Reader:
        self.store.check(write=False)
        self._reader = self.store.reader()
        return self._reader

    def _drop_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            with contextlib.suppress(Exception):  # a reader whose store went away may fail to close
                reader.close()

    def _poll_instrument(self, reader: Reader, data: InstrumentData, now: float) -> None:
        instrument = data.instrument
        book = reader.latest("book", instrument, BOOK_COLUMNS)
        features = reader.latest("features", instrument, FEATURE_COLUMNS)
        predictions = reader.latest_predictions(instrument)
        vol_forecasts = reader.latest_vol_forecasts(instrument)
        newest = max((row["ts"] for row in (book, features) if row is not None), default=None)
        new: dict[str, list[dict[str, Any]]] = {}
        if newest is not None:
            window_start = newest - int(self.settings.window_s * 1e9)
            for table, columns in (("book", BOOK_COLUMNS), ("trades", TRADE_COLUMNS), ("features", FEATURE_COLUMNS)):
                new[table] = self._after(reader, data, table, columns, window_start, newest)
        scored = None
        if predictions and now - data.scored >= self.settings.performance_every_s:
            scored = self._scores(reader, instrument, max(p["ts"] for p in predictions))
        backtests = None
        if now - data.backtests_read >= self.settings.backtests_every_s:
            backtests = reader.backtests(BACKTESTS_SHOWN, instrument=instrument)
        with self.lock:
            data.book, data.features, data.predictions = book, features, predictions
            data.vol_forecasts = vol_forecasts
            if backtests is not None:
                data.backtests, data.backtests_read = backtests, now
            self._append(data, new)
            if scored is not None:
                data.scores, weights, accuracy = scored
                data.scored = now
                for series, points in ((data.weights, weights), (data.accuracy, accuracy)):
                    last = series.rows[-1][0] if series.rows else -1
                    series.extend(point for point in points if point[0] > last)

    def _after(
        self, reader: Reader, data: InstrumentData, table: str, columns: list[str], window_start: int, newest: int
    ) -> list[dict[str, Any]]:
        """The instrument's rows of ``table`` after its cursor (at most the window), advancing the cursor."""
        cursor = data.cursors.get(table, (window_start, -1))
        if cursor[0] < window_start:
            cursor = (window_start, -1)
        rows = reader.range(table, data.instrument, cursor[0], newest + 1, columns, limit=MAX_ROWS)
        rows = [row for row in rows if (row["ts"], row["seq"]) > cursor]
        if rows:
            data.cursors[table] = (rows[-1]["ts"], rows[-1]["seq"])
        return rows

    def _sampled(self, data: InstrumentData, name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The first row of each time bucket not sampled yet (one heatmap column, one chart point per bucket)."""
        out = []
        for row in rows:
            bucket = row["ts"] // data.bucket_ns
            if bucket > data.buckets.get(name, -1):
                data.buckets[name] = bucket
                out.append(row)
        return out

    def _append(self, data: InstrumentData, new: dict[str, list[dict[str, Any]]]) -> None:
        for row in new.get("book", []):
            bid, ask = row["bid_price_1"], row["ask_price_1"]
            if bid is not None and ask is not None:
                data.mids.extend([(row["ts"], (bid + ask) / 2)])
        for row in self._sampled(data, "heat", new.get("book", [])):
            data.heat.extend(
                (row["ts"], row[f"{side}_price_{k}"], row[f"{side}_size_{k}"], sign)
                for side, sign in (("bid", 1), ("ask", -1))
                for k in range(1, LEVELS + 1)
                if row[f"{side}_price_{k}"] is not None and row[f"{side}_size_{k}"] is not None
            )
        data.trades.extend((row["ts"], row["price"], row["size"], row["side"]) for row in new.get("trades", []))
        data.micro.extend(
            (row["ts"], volatility_bps(row["realized_variance_10s"]), row["spread_bps"], row["event_rate_1s"])
            for row in self._sampled(data, "micro", new.get("features", []))
        )

    def _scores(self, reader: Reader, instrument: str, newest: int) -> tuple[dict[str, Scores], list, list]:
        """Scores of the predictions matured in the scoring window, and the ensemble's weights and the rolling
        accuracy over that window, one point per time bucket."""
        start = newest - int(self.settings.performance_window_s * 1e9)
        rows = reader.prediction_range(instrument, start, newest + 1, limit=MAX_ROWS)
        bucket_ns = self.bucket_ns
        weights: dict[int, dict[str, dict[str, float]]] = {}  # bucket -> model -> horizon -> weight
        hits: dict[str, deque[bool]] = {}
        accuracy: dict[int, dict[str, float]] = {}
        for row in rows:
            bucket = row["ts"] // bucket_ns * bucket_ns
            point = weights.setdefault(bucket, {})
            for model, weight in orjson.loads(row["model_weights"] or "{}").items():
                point.setdefault(model, {}).setdefault(row["horizon"], weight)
            if row["label"] is not None:
                recent = hits.setdefault(row["horizon"], deque(maxlen=ROLLING_PREDICTIONS))
                recent.append(row["predicted"] == row["label"])
                accuracy.setdefault(bucket, {})[row["horizon"]] = sum(recent) / len(recent)
        # one line a model, its weight's mean over the horizons: a line a model and horizon made 25 lines
        mean_weights = {
            bucket: {model: sum(by_horizon.values()) / len(by_horizon) for model, by_horizon in models.items()}
            for bucket, models in weights.items()
        }
        return matured_scores(rows), sorted(mean_weights.items()), sorted(accuracy.items())


def matured_scores(rows: list[dict[str, Any]]) -> dict[str, Scores]:
    """Scores per horizon of the rows that have a label."""
    by_horizon: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["label"] is not None:
            by_horizon.setdefault(row["horizon"], []).append(row)
    out = {}
    for horizon, matured in sorted(by_horizon.items(), key=lambda item: horizon_order(item[0])):
        labels = np.array([row["label"] + 1 for row in matured])
        probs = np.array([[row["p_down"], row["p_flat"], row["p_up"]] for row in matured])
        predicted = np.array([row["predicted"] + 1 for row in matured])  # the flow's decision, not always the argmax
        scored = report(labels, probs, predicted=predicted)
        out[horizon] = Scores(scored["n"], scored["accuracy"], scored["macro_f1"], reliability(labels, probs))
    return out


def volatility_bps(variance: float | None) -> float | None:
    """Realized volatility in bps from a realized variance of bps returns."""
    return None if variance is None or not variance >= 0 else float(np.sqrt(variance))
