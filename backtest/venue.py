"""The simulated venue: orders travel to it, meet the book the flow rebuilt from the recording, rest in
queues, fill, and pay their costs.

The engine calls it around every event of the recording::

    fills = venue.before_event(ts, book)        # requests that arrived by ts meet the book before the event
    outputs = sync.on_event(event, raw)         # the event is applied to the book
    fills += venue.after_event(ts, outputs, book)  # prints and depth changes move queues and fill

Rules (docs/backtest.md, "Venue"):

* **Latency.** A request reaches the venue ``latency.draw(now)`` after it is sent, and requests arrive in
  the order they were sent (one connection: a later request never overtakes an earlier one). The engine
  reports a fill to the strategy ``latency_of(order_id)`` after it happened.
* **Market orders** walk the book's levels from the best (the best-bid/offer stream's top when it is
  fresher than the depth), so size matters; what the book cannot fill expires. With the book not
  ready (stale after a gap, or waiting for its snapshot) any new order is rejected.
* **Limit orders** take what they cross on arrival (as takers, at the book's prices, up to the limit)
  and rest with the rest at the back of their price level's queue: the quantity ahead is the level's
  quantity then (0 at a new level). A resting order fills as maker at its own price when a print at
  its price goes past its place in the queue (``backtest.queues``), when a print is strictly worse
  than its price (a sell below a resting bid: the market traded through it; it fills in full), or when
  the opposite best reaches it (best ask <= its bid; in full).
* **Own liquidity.** No order fills from liquidity another own order already took. The venue remembers,
  per side and price, how much its taker fills took from the level and the level's quantity when they
  did; while the feed shows that same quantity there, later orders see it less what was taken. Once
  the feed shows another quantity at that price, the feed's quantity is the truth again (the taken
  part is forgotten). Own resting orders at one price keep their arrival order: a print fills the
  earlier one first, and own orders never trade with each other (a market order walks the others'
  levels, not the venue's own resting orders).
* **Cancels** remove a resting order when they arrive; a cancel of an order already done (filled,
  expired, rejected, cancelled) does nothing and is counted in ``rejected``.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator
from typing import NamedTuple

from backtest.costs import Costs
from backtest.latency import ConstantLatency, FeedLatency
from backtest.orders import BUY, MAKER, TAKER, Cancel, Fill, Order, Request
from backtest.queues import QueuePosition, RiskAverseQueue
from operators.book import OrderBook
from quantumflow.events import Trade

EPS = 1e-9  # quantities below this are nothing (float dust of fractional sizes)

FILLED, CANCELLED, EXPIRED, REJECTED = "filled", "cancelled", "expired", "rejected"


class Closed(NamedTuple):
    """An order the venue is done with, at ``ts``: ``outcome`` is FILLED, CANCELLED, EXPIRED (a market
    order's part the book could not fill) or REJECTED (``reason`` says why). The engine tells the
    strategy ``latency_ns`` later (the latency of the request that closed it)."""

    order_id: int
    ts: int
    outcome: str
    reason: str
    latency_ns: int


class _Resting:
    __slots__ = ("arrival", "level_qty", "order", "queue", "remaining")

    def __init__(self, order: Order, remaining: float, arrival: int, level_qty: float) -> None:
        self.order = order
        self.remaining = remaining
        self.arrival = arrival
        self.level_qty = level_qty  # the others' quantity at its price when last looked at
        self.queue = QueuePosition(level_qty)


class SimulatedVenue:
    def __init__(
        self,
        costs: Costs | None = None,
        queue_model: RiskAverseQueue | None = None,
        latency: ConstantLatency | FeedLatency | None = None,
    ) -> None:
        self.costs = costs if costs is not None else Costs()
        self.queue_model = queue_model if queue_model is not None else RiskAverseQueue()
        self.latency = latency if latency is not None else ConstantLatency()
        self.rejected: Counter[str] = Counter()
        self._in_flight: deque[tuple[int, Request, int]] = deque()  # (arrival, request, latency), arrival order
        self._last_arrival = 0
        self._sent: dict[int, Order] = {}  # in flight
        self._resting: dict[int, _Resting] = {}  # arrival order (dicts keep insertion order)
        self._latency: dict[int, int] = {}
        self._paid_fixed: set[int] = set()
        self._done: set[int] = set()
        self._closed: list[Closed] = []
        # (side of the level, price) -> (quantity own orders took, the level's quantity they took it from)
        self._taken: dict[tuple[int, float], tuple[float, float]] = {}

    # -- what the engine reads -----------------------------------------------------------

    @property
    def working(self) -> dict[int, Order]:
        """Orders in flight (as sent) or resting (``qty`` = what is left), by id."""
        out = dict(self._sent)
        for order_id, r in self._resting.items():
            out[order_id] = r.order._replace(qty=r.remaining)
        return out

    def latency_of(self, order_id: int) -> int:
        """The latency drawn for the order: its way in, and its fill reports' way back."""
        return self._latency[order_id]

    def take_closed(self) -> list[Closed]:
        """The orders closed since the last call."""
        closed, self._closed = self._closed, []
        return closed

    def params(self) -> dict:
        return {**self.costs.params(), **self.queue_model.params(), **self.latency.params()}

    # -- the engine's calls --------------------------------------------------------------

    def submit(self, request: Request, now: int) -> None:
        """Send an order or a cancel at ``now``: it reaches the venue ``latency.draw(now)`` later, never
        before a request sent earlier."""
        latency = self.latency.draw(now)
        arrival = max(now + latency, self._last_arrival)
        self._last_arrival = arrival
        self._in_flight.append((arrival, request, latency))
        if type(request) is Order:
            self._sent[request.id] = request
            self._latency[request.id] = latency

    def before_event(self, ts: int, book: OrderBook) -> list[Fill]:
        """The requests that reached the venue by ``ts``, in arrival order, against the book as it stands
        before the event at ``ts``: taker fills (at the arrival time), new resting orders, cancels."""
        fills: list[Fill] = []
        in_flight = self._in_flight
        while in_flight and in_flight[0][0] <= ts:
            arrival, request, latency = in_flight.popleft()
            if type(request) is Cancel:
                self._cancel(request.order_id, arrival, latency)
            else:
                del self._sent[request.id]
                self._arrive(request, arrival, book, fills)
        return fills

    def after_event(self, ts: int, outputs: list, book: OrderBook) -> list[Fill]:
        """The sync's outputs for the event at ``ts`` and the book after it: prints move and fill queues,
        the book's new levels move queues and fill what the opposite best reached. The latency model
        observes the outputs here (the engine need not)."""
        observe = self.latency.observe
        for out in outputs:
            observe(out)
        fills: list[Fill] = []
        if self._resting:
            for out in outputs:
                if type(out) is Trade:
                    self._on_trade(out, ts, fills)
            if book.ready:
                self._on_depth(ts, book, fills)
        if self._taken and book.ready:
            self._forget_changed_levels(book)
        return fills

    # -- arrivals ------------------------------------------------------------------------

    def _arrive(self, order: Order, ts: int, book: OrderBook, fills: list[Fill]) -> None:
        if order.qty <= EPS:
            self._reject(order.id, ts, "zero quantity")
            return
        if not book.ready:
            self._reject(order.id, ts, f"book not ready: {book.status}")
            return
        left = self._take(order, order.qty, ts, book, fills)
        if left <= EPS:
            self._close(order.id, ts, FILLED)
        elif order.price is None:
            if left < order.qty:
                self._close(order.id, ts, EXPIRED, "the book had no more liquidity")
            else:
                self._reject(order.id, ts, "no liquidity")
        else:
            level = self._available(order.side, order.price, _visible_qty(book, order.side, order.price))
            self._resting[order.id] = _Resting(order, left, ts, level)

    def _take(self, order: Order, qty: float, ts: int, book: OrderBook, fills: list[Fill]) -> float:
        """Walk the opposite side from its best level (up to the limit price, if any): taker fills.
        Returns what is left."""
        level_side = -order.side
        limit = order.price
        left = qty
        for price, visible in _levels(book, level_side):
            if limit is not None and order.side * (price - limit) > 0:
                break
            available = self._available(level_side, price, visible)
            if available <= EPS:
                continue
            take = min(available, left)
            taken, _ = self._taken.get((level_side, price), (0.0, visible))
            self._taken[(level_side, price)] = (taken + take, visible)
            fills.append(self._fill(order, ts, price, take, TAKER))
            left -= take
            if left <= EPS:
                break
        return left

    def _cancel(self, order_id: int, ts: int, latency: int) -> None:
        if self._resting.pop(order_id, None) is not None:
            self._done.add(order_id)
            self._closed.append(Closed(order_id, ts, CANCELLED, "", latency))
        elif order_id in self._done:
            self.rejected["cancel of an order already done"] += 1
        else:
            self.rejected["cancel of an unknown order"] += 1

    # -- the market's events -------------------------------------------------------------

    def _on_trade(self, trade: Trade, ts: int, fills: list[Fill]) -> None:
        """A print fills resting orders on the side its aggressor hit (both sides when the aggressor is
        unknown): those priced strictly better than the print in full, those at its price by the queue."""
        reached_by_price: dict[float, float] = {}  # what the print has left, per price, as it passes own orders
        blocked: set[float] = set()  # prices where an earlier own order is still unfilled after this print
        for order_id, r in list(self._resting.items()):
            side = r.order.side
            if trade.side == side:  # a buyer-initiated print hits asks, never bids
                continue
            price = r.order.price
            if side * (price - trade.price) > 0:
                self._maker_fill(order_id, r, ts, r.remaining, fills)
                continue
            if price != trade.price:
                continue
            reached = reached_by_price.get(price, trade.size)
            self.queue_model.trade(r.queue, reached, trade.size)
            past = -r.queue.ahead
            if past <= EPS or price in blocked:
                r.queue.ahead = max(r.queue.ahead, 0.0)
                blocked.add(price)
                continue
            r.queue.ahead = 0.0
            qty = min(past, r.remaining)
            reached_by_price[price] = reached - qty
            self._maker_fill(order_id, r, ts, qty, fills)
            if order_id in self._resting:
                blocked.add(price)

    def _on_depth(self, ts: int, book: OrderBook, fills: list[Fill]) -> None:
        """The book after the event: levels' new quantities move the queues; a resting order the
        opposite best has reached fills in full."""
        top = book.top_of_book()
        for order_id, r in list(self._resting.items()):
            side, price = r.order.side, r.order.price
            level = self._available(side, price, _visible_qty(book, side, price))
            if level != r.level_qty:
                self.queue_model.depth(r.queue, r.level_qty, level)
                r.level_qty = level
            if top is not None and self._reached(book, top, side, price):
                self._maker_fill(order_id, r, ts, r.remaining, fills)

    def _reached(self, book: OrderBook, top, side: int, price: float) -> bool:
        """True when the opposite side has liquidity (not taken by own orders) at or through ``price``."""
        best = top.ask_price if side == BUY else top.bid_price
        if side * (best - price) > 0:
            return False
        for level_price, visible in _levels(book, -side):
            if side * (level_price - price) > 0:
                return False
            if self._available(-side, level_price, visible) > EPS:
                return True
        return False

    # -- own liquidity -------------------------------------------------------------------

    def _available(self, level_side: int, price: float, visible: float) -> float:
        """The level's quantity less what own orders took from it, while the feed still shows the
        quantity they took it from."""
        entry = self._taken.get((level_side, price))
        if entry is None:
            return visible
        taken, seen = entry
        if visible != seen:
            del self._taken[(level_side, price)]
            return visible
        return max(0.0, visible - taken)

    def _forget_changed_levels(self, book: OrderBook) -> None:
        for key, (_, seen) in list(self._taken.items()):
            if _visible_qty(book, *key) != seen:
                del self._taken[key]

    # -- fills and closes ----------------------------------------------------------------

    def _maker_fill(self, order_id: int, r: _Resting, ts: int, qty: float, fills: list[Fill]) -> None:
        fills.append(self._fill(r.order, ts, r.order.price, qty, MAKER))
        r.remaining -= qty
        if r.remaining <= EPS:
            del self._resting[order_id]
            self._close(order_id, ts, FILLED)

    def _fill(self, order: Order, ts: int, price: float, qty: float, liquidity: str) -> Fill:
        first = order.id not in self._paid_fixed
        self._paid_fixed.add(order.id)
        fee, slippage = self.costs.fill_costs(price, qty, liquidity, first)
        return Fill(order.id, ts, order.side, price, qty, liquidity, fee, slippage, order.tag)

    def _reject(self, order_id: int, ts: int, reason: str) -> None:
        self.rejected[reason] += 1
        self._close(order_id, ts, REJECTED, reason)

    def _close(self, order_id: int, ts: int, outcome: str, reason: str = "") -> None:
        self._done.add(order_id)
        self._closed.append(Closed(order_id, ts, outcome, reason, self._latency[order_id]))


def _visible_qty(book: OrderBook, level_side: int, price: float) -> float:
    """The quantity the feed shows at ``price`` on a side, with the best-bid/offer stream's top when it
    is fresher than the depth (as ``OrderBook.top_level_lists``): depth levels better than that top are
    gone."""
    top = book.top_of_book()
    if level_side == BUY:
        if top is not None:
            if price == top.bid_price:
                return top.bid_size
            if price > top.bid_price:
                return 0.0
        return book.bids.get(price, 0.0)
    if top is not None:
        if price == top.ask_price:
            return top.ask_size
        if price < top.ask_price:
            return 0.0
    return book.asks.get(price, 0.0)


def _levels(book: OrderBook, level_side: int) -> Iterator[tuple[float, float]]:
    """(price, quantity) of one side's levels, best first, as ``OrderBook.top_level_lists`` shows them,
    as deep as the caller goes."""
    n, seen = 32, 0
    while True:
        bids, asks = book.top_level_lists(n)
        levels = bids if level_side == BUY else asks
        yield from levels[seen:]
        if len(levels) < n:
            return
        seen, n = len(levels), n * 8
