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
import math
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
from quantumflow.errors import UnfitInput
from quantumflow.events import BestBidOffer, BookDelta, BookSnapshot, DeadLetter, MarketEvent, RawMessage

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
    """What the strategy knows of its own orders and account: fills and ends of orders reach it one
    latency after they happen (``report``, then ``deliver`` once due)."""

    def __init__(self, capital: float) -> None:
        self.account = Account(capital)
        self.working: dict[int, Order] = {}
        self._left: dict[int, float] = {}
        self._due: list[tuple[int, int, Fill | int]] = []  # (due ts, arrival order, fill or ended order id)
        self._reported = 0

    def sent(self, order: Order) -> None:
        self.working[order.id] = order
        self._left[order.id] = order.qty

    def cancelled(self, order_id: int) -> None:
        self.working.pop(order_id, None)

    def report(self, due: int, what: Fill | int) -> None:
        self._reported += 1
        heapq.heappush(self._due, (due, self._reported, what))

    def deliver(self, ts: int, strategy: Strategy) -> None:
        """The reports due by ``ts``: fills to the account the strategy knows and to the strategy, ends of orders."""
        while self._due and self._due[0][0] <= ts:
            _, _, what = heapq.heappop(self._due)
            if type(what) is Fill:
                self.account.apply(what)
                self._done(what.order_id, what.qty)
                strategy.on_fill(what)
            else:
                self._done(what)

    def _done(self, order_id: int, qty: float | None = None) -> None:
        """An order done (``qty`` None: ended by the venue) or partly done by ``qty``."""
        left = self._left.get(order_id)
        if left is None:
            return
        left = 0.0 if qty is None else left - qty
        if left <= 1e-12:
            self._left.pop(order_id)
            self.working.pop(order_id, None)
        else:
            self._left[order_id] = left


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
    simulation = _Simulation(strategy, signals, venue, limits, sample_ns, start_ns)
    sync: BookSync | None = None
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
            simulation.on_event(sync, event, raw)
    if on_progress is not None:
        on_progress(sum(recording.size for recording in recordings))
    if sync is None:
        raise UnfitInput(f"the recordings hold no events of {instrument}")
    if not simulation.counts["book_events"]:
        raise UnfitInput(
            f"the book of {instrument} was never live in the part to backtest (a recording that starts without a "
            "snapshot needs the one before it: give that with --context or --train)"
        )
    return simulation.finish()


class _Simulation:
    def __init__(
        self, strategy: Strategy, signals: Signals, venue: SimulatedVenue, limits: Limits, sample_ns: int, start_ns: int
    ) -> None:
        self.strategy = strategy
        self.signals = signals
        self.venue = venue
        self.limits = limits
        self.sample_ns = sample_ns
        self.start_ns = start_ns
        self.account = Account(limits.capital)  # the truth
        self.known = _Known(limits.capital)  # what the strategy knows
        self.fills: list[Fill] = []
        self.samples: list[tuple[int, float, float]] = []  # (ts, equity, position)
        self.next_sample: int | None = None
        self.mid = math.nan
        self.first = self.last = 0
        self.spread_cost = 0.0  # what fills paid against the mid before them (the spread crossed, the book walked)
        self.counts = {"events": 0, "book_events": 0, "orders": 0, "cancels": 0, "clipped": 0}

    def on_event(self, sync: BookSync, event: MarketEvent, raw: RawMessage) -> None:
        ts = event.receive_ts
        self.counts["events"] += 1
        self._sample_until(ts)
        book = sync.book
        fills = self.venue.before_event(ts, book)
        outputs = sync.on_event(event, raw)
        fills += self.venue.after_event(ts, outputs, book)
        self._settle(fills)
        self.known.deliver(ts, self.strategy)
        changed = any(type(output) in _BOOK_CHANGES for output in outputs)
        if changed and book.status == LIVE and book.bids and book.asks and ts >= self.start_ns:
            self._book_event(ts, book)

    def _sample_until(self, ts: int) -> None:
        """Equity and position on the grid up to ``ts``, marked to the mid before the event at ``ts``."""
        while self.next_sample is not None and ts >= self.next_sample:
            self.samples.append((self.next_sample, self.account.equity(self.mid), self.account.position))
            self.next_sample += self.sample_ns

    def _settle(self, fills: list[Fill]) -> None:
        for fill in fills:
            self.account.apply(fill)
            self.fills.append(fill)
            self.spread_cost += fill.side * (fill.price - self.mid) * fill.qty
            self.known.report(fill.ts + self.venue.latency_of(fill.order_id), fill)
        for closed in self.venue.take_closed():
            self.known.report(closed.ts + closed.latency_ns, closed.order_id)

    def _book_event(self, ts: int, book) -> None:
        top = book.top_of_book()
        self.mid = (top.bid_price + top.ask_price) / 2
        self.first = self.first or ts
        self.last = ts
        if self.next_sample is None:
            self.next_sample = ts - ts % self.sample_ns + self.sample_ns
        self.counts["book_events"] += 1
        signal, vol = self.signals.newest(ts)
        known = self.known
        view = MarketView(
            ts,
            self.counts["events"],
            top.bid_price,
            top.ask_price,
            top.bid_size,
            top.ask_size,
            signal,
            vol,
            known.account.position,
            known.account.cash,
            dict(known.working),
        )
        for request in self.strategy.on_event(view):
            if type(request) is Cancel:
                self.counts["cancels"] += 1
                known.cancelled(request.order_id)
                self.venue.submit(request, ts)
            elif (order := self._within_limits(request)) is not None:
                self.counts["orders"] += 1
                known.sent(order)
                self.venue.submit(order, ts)

    def _within_limits(self, order: Order) -> Order | None:
        """The order clipped to the limits, as the known position and working orders stand, and to reducing the
        position once the known equity is gone (None: nothing left)."""
        known = self.known
        working = sum(o.qty for o in known.working.values() if o.side == order.side)
        price = self.mid if order.price is None else order.price
        position = known.account.position
        allowed = self.limits.allowed_qty(order.side, order.qty, price, position, working)
        if known.account.equity(self.mid) <= 0:  # the capital is lost: only what reduces the position may go
            allowed = min(allowed, min(order.qty, abs(position)) if order.side * position < 0 else 0.0)
        if allowed >= order.qty:
            return order
        self.counts["clipped"] += 1
        return order._replace(qty=allowed) if allowed > 0 else None

    def finish(self) -> Run:
        if self.next_sample is not None:
            self.samples.append((self.last, self.account.equity(self.mid), self.account.position))
        ts, equity, position = zip(*self.samples, strict=True) if self.samples else ((), (), ())
        counts = {**self.counts, "rejected": dict(self.venue.rejected), "spread_cost": self.spread_cost}
        return Run(
            self.account,
            np.asarray(ts, dtype=np.int64),
            np.asarray(equity, dtype=float),
            np.asarray(position, dtype=float),
            self.fills,
            self.first,
            self.last,
            counts,
        )
