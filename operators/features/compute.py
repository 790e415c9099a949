"""Per-event microstructure features for a batch of book states, with what carries between batches.

``compute_features(state, frame)`` returns one row of ``FEATURE_NAMES`` per row of the frame.
Everything a row reads is its own book state and earlier ones, so a feature at time t never
depends on anything after t, and the result does not depend on how the events are cut into
batches: windowed sums are differences of running totals that are always summed in stream
order, so they come out bit for bit the same for any cut.

Windowed operators (sums over the last W events or the last w seconds of local receive time)
keep a short history of running totals in ``FeatureState``: the events of the longest time
window, and at least the longest event window. Every ``REBASE_EVERY`` rows the totals restart
from zero (the history is shifted by the last total): the point is fixed by the stream, not by
the batches, so rows stay the same for any cut, and one huge value (a fat-finger size) cannot
drown later small ones in rounding for the rest of the run, only until it leaves the windows.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from operators.features import formulas
from operators.features.frame import BookFrame
from operators.features.micro_price import MicroPriceTable
from quantumflow.features import (
    DEPTH_BUCKETS_BPS,
    FEATURE_INDEX,
    FEATURE_NAMES,
    LEVELS,
    OFI_EVENT_WINDOWS,
    TIME_WINDOWS_S,
)

_NS = 1_000_000_000
_MAX_EVENTS = max(OFI_EVENT_WINDOWS)
_MAX_WINDOW_NS = max(TIME_WINDOWS_S) * _NS

# columns of the running totals
_OFI = slice(0, LEVELS)
_SIGNED, _BUY, _SELL, _TRADES, _SQUARES, _BIPOWER, _EVENTS = range(LEVELS, LEVELS + 7)
_TOTALS = LEVELS + 7
REBASE_EVERY = 4_096  # rows
_FIRST_CAPACITY = 1_024  # rows of history a new state has room for (it grows as the windows need)


def _columns(names: list[str]) -> np.ndarray:
    return np.array([FEATURE_INDEX[name] for name in names], dtype=np.intp)


def _window_columns(suffix: str) -> tuple[np.ndarray, np.ndarray]:
    """The OFI columns of one window (``ofi_{k}_{suffix}``) and the levels they read."""
    levels = [k for k in range(1, LEVELS + 1) if f"ofi_{k}_{suffix}" in FEATURE_INDEX]
    return _columns([f"ofi_{k}_{suffix}" for k in levels]), np.array(levels, dtype=np.intp) - 1


# Feature columns, looked up once: (column, levels read) per window, the column when the feature exists.
_EVENT_WINDOWS = [
    (events, *_window_columns(f"{events}e"), FEATURE_INDEX[f"mid_return_{events}e"]) for events in OFI_EVENT_WINDOWS
]
_WINDOW_NS = np.array(TIME_WINDOWS_S, dtype=np.int64)[:, None] * _NS  # (window, 1)


class _TimeColumns(NamedTuple):
    """Where each time window's sums go, all windows at once: ``(window, sums column) -> feature column``
    copies, and the columns divided by the window's length (rates), scaled (bipower variation) or
    turned into an imbalance of buys and sells."""

    copied: tuple[np.ndarray, np.ndarray, np.ndarray]  # window, sums column, feature column
    rates: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # ... and the window's seconds
    bipower: tuple[np.ndarray, np.ndarray]  # window, feature column
    imbalance: tuple[np.ndarray, np.ndarray]  # window, feature column


def _time_columns() -> _TimeColumns:
    copied: list[tuple[int, int, int]] = []
    rates: list[tuple[int, int, int, float]] = []
    bipower: list[tuple[int, int]] = []
    imbalance: list[tuple[int, int]] = []
    for w, seconds in enumerate(TIME_WINDOWS_S):
        columns, levels = _window_columns(f"{seconds}s")
        copied += [(w, level, column) for column, level in zip(columns.tolist(), levels.tolist(), strict=True)]
        copied.append((w, _SQUARES, FEATURE_INDEX[f"realized_variance_{seconds}s"]))
        if f"signed_volume_{seconds}s" in FEATURE_INDEX:
            copied.append((w, _SIGNED, FEATURE_INDEX[f"signed_volume_{seconds}s"]))
            imbalance.append((w, FEATURE_INDEX[f"trade_imbalance_{seconds}s"]))
        for name, total in (("event_rate", _EVENTS), ("trade_rate", _TRADES)):
            if f"{name}_{seconds}s" in FEATURE_INDEX:
                rates.append((w, total, FEATURE_INDEX[f"{name}_{seconds}s"], float(seconds)))
        if f"bipower_variation_{seconds}s" in FEATURE_INDEX:
            bipower.append((w, FEATURE_INDEX[f"bipower_variation_{seconds}s"]))

    def arrays(rows: list[tuple], *types: type) -> tuple[np.ndarray, ...]:
        return tuple(np.array([row[i] for row in rows], dtype=t) for i, t in enumerate(types))

    return _TimeColumns(
        arrays(copied, np.intp, np.intp, np.intp),
        arrays(rates, np.intp, np.intp, np.intp, np.float64),
        arrays(bipower, np.intp, np.intp),
        arrays(imbalance, np.intp, np.intp),
    )


_TIME_COLUMNS = _time_columns()
# (side, bucket) -> feature column for the volume profile; per side the slope and the whole depth
_BUCKETS_BPS = np.array(DEPTH_BUCKETS_BPS, dtype=np.float64)[:, None, None, None]  # (bucket, side, row, level)
_BUCKET_COLUMNS = _columns([f"{side}_depth_{bps}bps" for bps in DEPTH_BUCKETS_BPS for side in ("bid", "ask")])
_SLOPE_COLUMNS = _columns(["bid_slope", "ask_slope"])
_DEPTH_COLUMNS = _columns([f"bid_depth_{LEVELS}", f"ask_depth_{LEVELS}"])
_MID, _SPREAD, _SPREAD_BPS, _WEIGHTED_MID, _MICRO_PRICE, _OFI_1, _TIME_SINCE_MID_CHANGE = (
    FEATURE_INDEX[name]
    for name in ("mid", "spread", "spread_bps", "weighted_mid", "micro_price", "ofi_1", "time_since_mid_change")
)
_IMBALANCE = slice(FEATURE_INDEX["depth_imbalance_1"], FEATURE_INDEX["depth_imbalance_1"] + LEVELS)


class FeatureState:
    """What one instrument's features carry from one batch to the next.

    The history of running totals lives in ring buffers: rows ``start:end`` of ``_ts``, ``_totals`` and
    ``_mid`` (row ``start`` is the origin, the totals before the first row kept). A batch appends its rows
    after ``end`` and moves ``start`` past the rows no window reaches any more, so a call copies nothing of
    the history; the live rows move to the front only when the buffers are full. A snapshot (pickle; Bytewax
    copies the state) holds the live rows only."""

    __slots__ = (
        "_end",
        "_mid",
        "_start",
        "_totals",
        "_ts",
        "computed_rows",
        "last_change_ts",
        "micro_price",
        "previous_abs_return",
        "previous_levels",
        "previous_mid",
    )

    def __init__(self, micro_price: MicroPriceTable | None = None) -> None:
        self.micro_price = micro_price
        self.previous_levels: tuple[np.ndarray, ...] | None = None
        self.previous_mid = np.nan
        self.previous_abs_return = 0.0
        self.last_change_ts = 0
        self._ts = np.empty(_FIRST_CAPACITY, dtype=np.int64)
        self._totals = np.empty((_FIRST_CAPACITY, _TOTALS))
        self._mid = np.empty(_FIRST_CAPACITY)
        self._ts[0] = np.iinfo(np.int64).min
        self._totals[0] = 0.0
        self._mid[0] = np.nan
        self._start, self._end = 0, 1
        self.computed_rows = 0

    @property
    def history_ts(self) -> np.ndarray:
        return self._ts[self._start : self._end]

    @property
    def history_totals(self) -> np.ndarray:
        return self._totals[self._start : self._end]

    @property
    def history_mid(self) -> np.ndarray:
        return self._mid[self._start : self._end]

    def _make_room(self, rows: int) -> None:
        """Room for ``rows`` more rows after ``end``: the live rows moved to the front, or into buffers
        twice the size they need."""
        if self._end + rows <= len(self._ts):
            return
        live = self._end - self._start
        if 2 * (live + rows) <= len(self._ts):
            buffers = (self._ts, self._totals, self._mid)
        else:
            size = 2 * (live + rows)
            buffers = (np.empty(size, dtype=np.int64), np.empty((size, _TOTALS)), np.empty(size))
        for new, old in zip(buffers, (self._ts, self._totals, self._mid), strict=True):
            new[:live] = old[self._start : self._end]  # overlapping moves are safe in NumPy
        self._ts, self._totals, self._mid = buffers
        self._start, self._end = 0, live

    def __getstate__(self) -> dict:
        state = {name: getattr(self, name) for name in self.__slots__ if name[0] != "_"}
        state.update(history_ts=self.history_ts.copy(), history_totals=self.history_totals.copy())
        state["history_mid"] = self.history_mid.copy()
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        self._ts, self._totals = state.pop("history_ts"), state.pop("history_totals")
        self._mid = state.pop("history_mid")
        self._start, self._end = 0, len(self._ts)
        for name, value in state.items():
            setattr(self, name, value)


def compute_features(state: FeatureState, frame: BookFrame) -> np.ndarray:
    """The features of every row of ``frame`` (shape ``(len(frame), len(FEATURE_NAMES))``); updates ``state``."""
    n = len(frame)
    done = state.computed_rows
    rebase_at = (done // REBASE_EVERY + 1) * REBASE_EVERY
    if done + n > rebase_at:  # compute up to the rebase point, then the rest
        cut = rebase_at - done
        head = compute_features(state, frame.rows(slice(0, cut)))
        return np.vstack([head, compute_features(state, frame.rows(slice(cut, None)))])
    out = np.empty((n, len(FEATURE_NAMES)))
    if n == 0:
        return out
    state._make_room(n)
    start, end = state._start, state._end
    if done and done % REBASE_EVERY == 0:
        history = state._totals[start:end]
        history -= history[-1].copy()
    bp, bq, ap, aq = frame.bid_prices, frame.bid_sizes, frame.ask_prices, frame.ask_sizes
    b1, a1, qb1, qa1 = bp[:, 0], ap[:, 0], bq[:, 0], aq[:, 0]

    mid = formulas.mid(b1, a1)
    spread = a1 - b1
    weighted_mid = formulas.weighted_mid(b1, qb1, a1, qa1)
    out[:, _MID] = mid
    out[:, _SPREAD] = spread
    out[:, _SPREAD_BPS] = 1e4 * spread / mid
    out[:, _WEIGHTED_MID] = weighted_mid
    out[:, _MICRO_PRICE] = (
        weighted_mid if state.micro_price is None else state.micro_price.apply(mid, spread, qb1, qa1, weighted_mid)
    )
    out[:, _IMBALANCE] = formulas.cumulative_depth_imbalance(bq, aq)

    previous = state.previous_levels or (bp[0], bq[0], ap[0], aq[0])
    increments = formulas.order_flow_increments(
        *(np.concatenate([p[None], c[:-1]]) for p, c in zip(previous, (bp, bq, ap, aq), strict=True)), bp, bq, ap, aq
    )
    previous_mid = np.concatenate([[state.previous_mid], mid[:-1]])
    returns = 1e4 * np.log(mid / previous_mid)
    no_increment = frame.reset | np.isnan(previous_mid)
    increments[frame.reset] = 0.0
    returns[no_increment] = 0.0
    abs_returns = np.abs(returns)
    out[:, _OFI_1] = increments[:, 0]

    # The batch's running totals and times go straight into the history buffers, after its last row.
    window = slice(start, end + n)
    all_ts, all_totals, all_mid = state._ts[window], state._totals[window], state._mid[window]
    x = state._totals[end - 1 : end + n]  # row 0: the last total; the cumulative sum runs on from it
    x[1:, _OFI] = increments
    x[1:, _SIGNED] = frame.buy_volume - frame.sell_volume
    x[1:, _BUY] = frame.buy_volume
    x[1:, _SELL] = frame.sell_volume
    x[1:, _TRADES] = frame.trade_count
    x[1:, _SQUARES] = returns * returns
    x[1:, _BIPOWER] = abs_returns * np.concatenate([[state.previous_abs_return], abs_returns[:-1]])
    x[1:, _EVENTS] = 1.0
    np.cumsum(x, axis=0, out=x)  # in stream order, from the last total
    ts = state._ts[end : end + n]
    ts[:] = frame.ts
    np.maximum.accumulate(state._ts[end - 1 : end + n], out=state._ts[end - 1 : end + n])
    state._mid[end : end + n] = mid
    history = end - start
    rows = np.arange(history, history + n)
    now = all_totals[history:]

    for events, columns, levels, mid_return in _EVENT_WINDOWS:
        earlier = rows - events
        out[:, columns] = (now - all_totals[np.maximum(earlier, 0)])[:, levels]
        out[:, mid_return] = np.where(earlier >= 0, 1e4 * np.log(mid / all_mid[np.maximum(earlier, 0)]), np.nan)
    # every time window at once: (window, row, total)
    first = np.searchsorted(all_ts, ts - _WINDOW_NS, side="right") - 1
    sums = now - all_totals[np.maximum(first, 0)]
    window, total, column = _TIME_COLUMNS.copied
    out[:, column] = sums[window, :, total].T
    window, total, column, seconds = _TIME_COLUMNS.rates
    out[:, column] = (sums[window, :, total] / seconds[:, None]).T
    window, column = _TIME_COLUMNS.bipower
    out[:, column] = ((np.pi / 2) * sums[window, :, _BIPOWER]).T
    window, column = _TIME_COLUMNS.imbalance
    out[:, column] = formulas.imbalance(sums[window, :, _BUY], sums[window, :, _SELL]).T

    # both sides at once: (side, row, level)
    prices, sizes = np.stack((bp, ap)), np.stack((bq, aq))
    distance = formulas.distance_bps(prices, mid)
    out[:, _SLOPE_COLUMNS] = formulas.book_slope(distance, sizes).T
    out[:, _BUCKET_COLUMNS] = formulas.depth_within(distance, sizes, _BUCKETS_BPS).reshape(-1, n).T
    out[:, _DEPTH_COLUMNS] = sizes.sum(axis=-1).T

    changed = mid != previous_mid
    last_change = np.maximum.accumulate(np.where(changed, np.arange(n), -1))
    change_ts = np.where(last_change >= 0, ts[np.maximum(last_change, 0)], state.last_change_ts)
    out[:, _TIME_SINCE_MID_CHANGE] = (ts - change_ts) / _NS

    state.previous_levels = (bp[-1], bq[-1], ap[-1], aq[-1])
    state.previous_mid = mid[-1]
    state.previous_abs_return = abs_returns[-1]
    state.last_change_ts = int(change_ts[-1])
    _keep_history(state, all_ts)
    state.computed_rows += n
    return out


def _keep_history(state: FeatureState, all_ts: np.ndarray) -> None:
    """Keep the rows the next batch's windows can reach, plus the origin row before them."""
    first_kept = np.searchsorted(all_ts, all_ts[-1] - _MAX_WINDOW_NS, side="right")
    first_kept = max(1, min(first_kept, len(all_ts) - _MAX_EVENTS))
    state._end = state._start + len(all_ts)
    state._start += first_kept - 1
