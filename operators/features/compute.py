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


class FeatureState:
    """What one instrument's features carry from one batch to the next (compact: Bytewax copies it)."""

    __slots__ = (
        "computed_rows",
        "history_mid",
        "history_totals",
        "history_ts",
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
        # row 0 is the origin: running totals before the first row kept
        self.history_ts = np.array([np.iinfo(np.int64).min], dtype=np.int64)
        self.history_totals = np.zeros((1, _TOTALS))
        self.history_mid = np.array([np.nan])
        self.computed_rows = 0


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
    if done and done % REBASE_EVERY == 0:
        state.history_totals = state.history_totals - state.history_totals[-1]
    col = FEATURE_INDEX
    bp, bq, ap, aq = frame.bid_prices, frame.bid_sizes, frame.ask_prices, frame.ask_sizes
    b1, a1, qb1, qa1 = bp[:, 0], ap[:, 0], bq[:, 0], aq[:, 0]

    mid = formulas.mid(b1, a1)
    spread = a1 - b1
    weighted_mid = formulas.weighted_mid(b1, qb1, a1, qa1)
    out[:, col["mid"]] = mid
    out[:, col["spread"]] = spread
    out[:, col["spread_bps"]] = 1e4 * spread / mid
    out[:, col["weighted_mid"]] = weighted_mid
    out[:, col["micro_price"]] = (
        weighted_mid if state.micro_price is None else state.micro_price.apply(mid, spread, qb1, qa1, weighted_mid)
    )
    imbalance = formulas.cumulative_depth_imbalance(bq, aq)
    out[:, col["depth_imbalance_1"] : col["depth_imbalance_1"] + LEVELS] = imbalance

    previous = state.previous_levels or (bp[0], bq[0], ap[0], aq[0])
    increments = formulas.order_flow_increments(
        *(np.vstack([p[None], c[:-1]]) for p, c in zip(previous, (bp, bq, ap, aq), strict=True)), bp, bq, ap, aq
    )
    previous_mid = np.concatenate([[state.previous_mid], mid[:-1]])
    returns = 1e4 * np.log(mid / previous_mid)
    no_increment = frame.reset | np.isnan(previous_mid)
    increments[frame.reset] = 0.0
    returns[no_increment] = 0.0
    abs_returns = np.abs(returns)
    out[:, col["ofi_1"]] = increments[:, 0]

    x = np.empty((n, _TOTALS))
    x[:, _OFI] = increments
    x[:, _SIGNED] = frame.buy_volume - frame.sell_volume
    x[:, _BUY] = frame.buy_volume
    x[:, _SELL] = frame.sell_volume
    x[:, _TRADES] = frame.trade_count
    x[:, _SQUARES] = returns * returns
    x[:, _BIPOWER] = abs_returns * np.concatenate([[state.previous_abs_return], abs_returns[:-1]])
    x[:, _EVENTS] = 1.0
    totals = np.cumsum(np.vstack([state.history_totals[-1:], x]), axis=0)[1:]  # in stream order, from the last total
    ts = np.maximum.accumulate(np.concatenate([state.history_ts[-1:], frame.ts]))[1:]

    all_ts = np.concatenate([state.history_ts, ts])
    all_totals = np.vstack([state.history_totals, totals])
    all_mid = np.concatenate([state.history_mid, mid])
    rows = np.arange(len(state.history_ts), len(all_ts))
    now = all_totals[rows]

    def over_events(events: int) -> np.ndarray:
        return now - all_totals[np.maximum(rows - events, 0)]

    def over_seconds(seconds: int) -> np.ndarray:
        start = np.searchsorted(all_ts, ts - seconds * _NS, side="right") - 1
        return now - all_totals[np.maximum(start, 0)]

    for events in OFI_EVENT_WINDOWS:
        sums = over_events(events)
        for k in range(1, LEVELS + 1):
            if f"ofi_{k}_{events}e" in col:
                out[:, col[f"ofi_{k}_{events}e"]] = sums[:, k - 1]
        earlier = rows - events
        out[:, col[f"mid_return_{events}e"]] = np.where(
            earlier >= 0, 1e4 * np.log(mid / all_mid[np.maximum(earlier, 0)]), np.nan
        )
    for seconds in TIME_WINDOWS_S:
        sums = over_seconds(seconds)
        for k in range(1, LEVELS + 1):
            if f"ofi_{k}_{seconds}s" in col:
                out[:, col[f"ofi_{k}_{seconds}s"]] = sums[:, k - 1]
        if f"signed_volume_{seconds}s" in col:
            out[:, col[f"signed_volume_{seconds}s"]] = sums[:, _SIGNED]
            out[:, col[f"trade_imbalance_{seconds}s"]] = formulas.imbalance(sums[:, _BUY], sums[:, _SELL])
        if f"event_rate_{seconds}s" in col:
            out[:, col[f"event_rate_{seconds}s"]] = sums[:, _EVENTS] / seconds
        if f"trade_rate_{seconds}s" in col:
            out[:, col[f"trade_rate_{seconds}s"]] = sums[:, _TRADES] / seconds
        out[:, col[f"realized_variance_{seconds}s"]] = sums[:, _SQUARES]
        if f"bipower_variation_{seconds}s" in col:
            out[:, col[f"bipower_variation_{seconds}s"]] = (np.pi / 2) * sums[:, _BIPOWER]

    for side, prices, sizes in (("bid", bp, bq), ("ask", ap, aq)):
        distance = formulas.distance_bps(prices, mid)
        out[:, col[f"{side}_slope"]] = formulas.book_slope(distance, sizes)
        for bps in DEPTH_BUCKETS_BPS:
            out[:, col[f"{side}_depth_{bps}bps"]] = formulas.depth_within(distance, sizes, bps)
        out[:, col[f"{side}_depth_{LEVELS}"]] = sizes.sum(axis=1)

    changed = mid != previous_mid
    last_change = np.maximum.accumulate(np.where(changed, np.arange(n), -1))
    change_ts = np.where(last_change >= 0, ts[np.maximum(last_change, 0)], state.last_change_ts)
    out[:, col["time_since_mid_change"]] = (ts - change_ts) / _NS

    state.previous_levels = (bp[-1], bq[-1], ap[-1], aq[-1])
    state.previous_mid = mid[-1]
    state.previous_abs_return = abs_returns[-1]
    state.last_change_ts = int(change_ts[-1])
    _keep_history(state, all_ts, all_totals, all_mid)
    state.computed_rows += n
    return out


def _keep_history(state: FeatureState, all_ts: np.ndarray, all_totals: np.ndarray, all_mid: np.ndarray) -> None:
    """Keep the rows the next batch's windows can reach, plus the origin row before them."""
    first_kept = np.searchsorted(all_ts, all_ts[-1] - _MAX_WINDOW_NS, side="right")
    first_kept = max(1, min(first_kept, len(all_ts) - _MAX_EVENTS))
    origin = first_kept - 1
    state.history_ts = all_ts[origin:].copy()
    state.history_totals = all_totals[origin:].copy()
    state.history_mid = all_mid[origin:].copy()
