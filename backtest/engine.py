"""The event loop of a backtest: one instrument's messages from the recordings, in the order the flow
reads them, through the flow's own parse and sync into its book; before each event the simulated venue
handles the requests that have reached it (against the book as it stands then), after it the venue
matches the event (trades, depth changes) against resting orders; after each book event the strategy
sees the market, the newest signal made so far and what it knows of its own orders, and answers.

Fills reach the account at once (the truth) and the strategy one latency later (what it knows).
Equity is marked to the mid on a fixed grid of receive time, the sampling the Sharpe ratio is
annualised from.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backtest.account import Account
from backtest.costs import Limits
from backtest.orders import Cancel, Fill, MarketView, Order
from backtest.signals import Signals
from backtest.strategy import Strategy
from backtest.venue import SimulatedVenue
from dataflows.recordings import open_recording
from dataflows.sources import merged, recording_paths
from operators.book import LIVE
from operators.feeds import FEEDS, parse
from operators.sync import BookSync
from quantumflow.events import BestBidOffer, BookDelta, BookSnapshot, DeadLetter

SAMPLE_NS = 1_000_000_000
_BOOK_CHANGES = (BookDelta, BestBidOffer, BookSnapshot)


@dataclass
class Run:
    """What one simulation leaves: the account, the equity curve, the fills and the counts."""

    account: Account
    equity_ts: np.ndarray
    equity: np.ndarray
    position: np.ndarray
    fills: list[Fill]
    start_ns: int
    end_ns: int
    counts: dict = field(default_factory=dict)


class _Known:
    """The strategy's own view of its orders and position: updated when a fill report reaches it."""

    def __init__(self, capital: float) -> None:
        self.position = 0.0
        self.cash = capital
        self.working: dict[int, Order] = {}
        self.left: dict[int, float] = {}

    def sent(self, order: Order) -> None:
        self.working[order.id] = order
        self.left[order.id] = order.qty

    def cancelled(self, order_id: int) -> None:
        self.working.pop(order_id, None)

    def filled(self, fill: Fill) -> None:
        self.position += fill.side * fill.qty
        self.cash -= fill.side * fill.qty * fill.price + fill.fee + fill.slippage
        self.finished(fill.order_id, fill.qty)

    def finished(self, order_id: int, qty: float | None = None) -> None:
        """An order done (``qty`` None: ended by the venue) or partly done by ``qty``."""
        left = self.left.get(order_id)
        if left is None:
            return
        left = 0.0 if qty is None else left - qty
        if left <= 1e-12:
            self.left.pop(order_id)
            self.working.pop(order_id, None)
        else:
            self.left[order_id] = left


def simulate(
    paths: Sequence[str | Path],
    instrument: str,
    strategy: Strategy,
    signals: Signals,
    venue: SimulatedVenue,
    limits: Limits,
    feed: str | None = None,
    sample_ns: int = SAMPLE_NS,
    on_progress: Callable[[int], None] | None = None,
    depth_only: bool = False,
    start_ns: int = 0,
) -> Run:
    """Run ``strategy`` over ``instrument``'s events in the recordings (``on_progress`` gets the bytes read so
        far). ``depth_only`` leaves out the venue's separate best-bid/offer stream (Binance ``bookTicker``): the
        book is the depth stream's alone, as engines that read only depth see it. Events before ``start_ns`` only
    build the book: the strategy starts, and equity is sampled, from the first book event at or after it."""
    recordings = [open_recording(path, feed) for path in recording_paths(paths)]
    signals.rewind()
    account = Account(limits.capital)
    known = _Known(limits.capital)
    reports: list[tuple[int, int, Fill | int]] = []  # (due ts, order, fill or ended order id) to the strategy
    order_of_report = 0
    fills: list[Fill] = []
    samples_ts: list[int] = []
    samples_equity: list[float] = []
    samples_position: list[float] = []
    next_sample: int | None = None
    sync: BookSync | None = None
    mid = float("nan")
    first = last = 0
    spread_cost = 0.0  # what fills paid against the mid before them (the spread crossed, the book walked)
    counts = {"events": 0, "book_events": 0, "orders": 0, "cancels": 0, "clipped": 0}
    for number, raw in enumerate(merged(recordings)):
        if on_progress is not None and number % 2000 == 0:
            on_progress(sum(recording.bytes_read for recording in recordings))
        if type(raw) is DeadLetter:
            continue
        for event in parse(raw):
            kind = type(event)
            if kind is DeadLetter or event.instrument != instrument or (depth_only and kind is BestBidOffer):
                continue
            if sync is None:
                sync = BookSync(instrument, raw.feed, FEEDS[raw.feed].rule())
            ts = event.receive_ts
            counts["events"] += 1
            book = sync.book
            if next_sample is not None:
                while ts >= next_sample:
                    samples_ts.append(next_sample)
                    samples_equity.append(account.equity(mid))
                    samples_position.append(account.position)
                    next_sample += sample_ns
            done = venue.before_event(ts, book)
            outputs = sync.on_event(event, raw)
            done += venue.after_event(ts, outputs, book)
            for fill in done:
                account.apply(fill)
                fills.append(fill)
                if mid == mid:
                    spread_cost += fill.side * (fill.price - mid) * fill.qty
                order_of_report += 1
                heapq.heappush(reports, (fill.ts + venue.latency_of(fill.order_id), order_of_report, fill))
            for closed in venue.take_closed():
                order_of_report += 1
                heapq.heappush(reports, (closed.ts + closed.latency_ns, order_of_report, closed.order_id))
            while reports and reports[0][0] <= ts:
                _, _, report = heapq.heappop(reports)
                if type(report) is Fill:
                    known.filled(report)
                    strategy.on_fill(report)
                else:
                    known.finished(report)
            if not (book.status == LIVE and book.bids and book.asks and any(type(o) in _BOOK_CHANGES for o in outputs)):
                continue
            if ts < start_ns:
                continue
            top = book.top_of_book()
            mid = (top.bid_price + top.ask_price) / 2
            first = first or ts
            last = ts
            if next_sample is None:
                next_sample = ts - ts % sample_ns + sample_ns
            counts["book_events"] += 1
            signal, vol = signals.newest(ts)
            view = MarketView(
                ts,
                counts["events"],
                top.bid_price,
                top.ask_price,
                top.bid_size,
                top.ask_size,
                signal,
                vol,
                known.position,
                known.cash,
                dict(known.working),
            )
            for request in strategy.on_event(view):
                if type(request) is Cancel:
                    counts["cancels"] += 1
                    known.cancelled(request.order_id)
                    venue.submit(request, ts)
                    continue
                working = sum(o.qty for o in known.working.values() if o.side == request.side)
                price = mid if request.price is None else request.price
                allowed = limits.allowed_qty(request.side, request.qty, price, known.position, working)
                if allowed < request.qty:
                    counts["clipped"] += 1
                    if allowed <= 0:
                        continue
                    request = request._replace(qty=allowed)
                counts["orders"] += 1
                known.sent(request)
                venue.submit(request, ts)
    if on_progress is not None:
        on_progress(sum(recording.size for recording in recordings))
    if sync is None:
        raise ValueError(f"the recordings hold no events of {instrument}")
    if not counts["book_events"]:
        raise ValueError(
            f"the book of {instrument} was never live in the part to backtest (a recording that starts without a "
            "snapshot needs the one before it: give that with --context or --train)"
        )
    if next_sample is not None:
        samples_ts.append(last)
        samples_equity.append(account.equity(mid))
        samples_position.append(account.position)
    counts["rejected"] = dict(venue.rejected)
    counts["spread_cost"] = spread_cost
    return Run(
        account,
        np.asarray(samples_ts, dtype=np.int64),
        np.asarray(samples_equity, dtype=float),
        np.asarray(samples_position, dtype=float),
        fills,
        first,
        last,
        counts,
    )
