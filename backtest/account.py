"""The backtest's books: cash, position, costs paid, turnover, and the round trips (trades) that win rate,
profit factor and trade duration are measured on."""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from backtest.orders import Fill

EPS = 1e-9


class RoundTrip(NamedTuple):
    """A quantity opened by one order and closed by another, matched first in, first out. ``side`` is
    the opening side (+1: bought then sold). ``pnl`` is net: the price difference times ``qty``, less
    the fees and slippage of the fills that opened and closed it, pro rata to quantity (an order's fixed
    fee is spread over the order's whole quantity)."""

    side: int
    qty: float
    entry_ts: int
    exit_ts: int
    entry_price: float
    exit_price: float
    pnl: float


class _Lot:
    """What one order opened and is not closed yet."""

    __slots__ = ("cost", "order_id", "price", "qty", "side", "ts")

    def __init__(self, fill: Fill, qty: float, cost: float) -> None:
        self.order_id = fill.order_id
        self.side = fill.side
        self.ts = fill.ts
        self.price = fill.price
        self.qty = qty
        self.cost = cost  # the fees and slippage the open quantity still carries

    def add(self, fill: Fill, qty: float, cost: float) -> None:
        total = self.qty + qty
        self.price = (self.price * self.qty + fill.price * qty) / total
        self.qty = total
        self.cost += cost


class Account:
    """Cash starts at ``capital``; a fill of ``qty`` at ``price`` moves ``side * qty`` into the position
    and ``side * price * qty + fee + slippage`` out of cash. Equity marked to the mid is
    ``cash + position * mid``; so ``equity - capital = gross P&L - fees - slippage``."""

    def __init__(self, capital: float = 100_000.0) -> None:
        self.capital = capital
        self.cash = capital
        self.position = 0.0
        self.fees = 0.0
        self.slippage = 0.0
        self.turnover = 0.0  # traded notional, both sides
        self.fills = 0
        self.round_trips: list[RoundTrip] = []
        self._lots: deque[_Lot] = deque()
        self._last_match: tuple[int, int] | None = None  # (opening order, closing order) of the last round trip

    def apply(self, fill: Fill) -> None:
        notional = fill.price * fill.qty
        self.cash -= fill.side * notional + fill.fee + fill.slippage
        self.position += fill.side * fill.qty
        if abs(self.position) <= EPS:
            self.position = 0.0
        self.fees += fill.fee
        self.slippage += fill.slippage
        self.turnover += notional
        self.fills += 1
        self._match(fill)

    def equity(self, mid: float) -> float:
        return self.cash + self.position * mid

    def open_pnl(self, mid: float) -> float:
        """What the open quantity would make closed at ``mid``, net of the costs it carries: with the round
        trips' P&L, ``equity(mid) - capital``."""
        return sum(lot.side * (mid - lot.price) * lot.qty - lot.cost for lot in self._lots)

    def _match(self, fill: Fill) -> None:
        cost_per_unit = (fill.fee + fill.slippage) / fill.qty
        left = fill.qty
        lots = self._lots
        while left > EPS and lots and lots[0].side != fill.side:
            lot = lots[0]
            qty = min(lot.qty, left)
            entry_cost = lot.cost * qty / lot.qty
            pnl = lot.side * (fill.price - lot.price) * qty - entry_cost - cost_per_unit * qty
            self._record(lot, fill, qty, pnl)
            lot.qty -= qty
            lot.cost -= entry_cost
            left -= qty
            if lot.qty <= EPS:
                lots.popleft()
        if left > EPS:
            last = lots[-1] if lots else None
            if last is not None and last.order_id == fill.order_id and last.side == fill.side:
                last.add(fill, left, cost_per_unit * left)
            else:
                lots.append(_Lot(fill, left, cost_per_unit * left))

    def _record(self, lot: _Lot, fill: Fill, qty: float, pnl: float) -> None:
        """One round trip per (opening order, closing order): the closing order's further fills against
        the same lot extend it."""
        key = (lot.order_id, fill.order_id)
        if self._last_match == key:
            rt = self.round_trips[-1]
            total = rt.qty + qty
            exit_price = (rt.exit_price * rt.qty + fill.price * qty) / total
            self.round_trips[-1] = rt._replace(qty=total, exit_ts=fill.ts, exit_price=exit_price, pnl=rt.pnl + pnl)
            return
        self._last_match = key
        self.round_trips.append(RoundTrip(lot.side, qty, lot.ts, fill.ts, lot.price, fill.price, pnl))
