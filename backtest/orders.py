"""The backtest's domain types: what a strategy sends (orders, cancels), what the venue answers (fills),
and what a strategy sees of the market at each event.

Sides are +1 (buy) and -1 (sell); quantities are in the instrument's unit of size (base currency: BTC
for BTCUSDT), always positive; prices and money in the quote currency (USDT for BTCUSDT, counted as
dollars). Times are receive-time nanoseconds of the recording (``quantumflow.events``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

BUY, SELL = 1, -1
MAKER, TAKER = "maker", "taker"


class Order(NamedTuple):
    """A new order. ``price`` None is a market order (it walks the book); otherwise a limit order that
    rests in the price level's queue (a limit order that crosses the spread on arrival takes what it
    crosses, up to its price, and rests with the rest). ``tag`` says what it is for (reports group by it)."""

    id: int
    side: int
    qty: float
    price: float | None = None
    tag: str = ""


class Cancel(NamedTuple):
    order_id: int


Request = Order | Cancel


class Fill(NamedTuple):
    """Part or all of an order done at the venue at ``ts`` (the event that did it). ``price`` is the
    price the book gave, before slippage; ``slippage`` is the extra cost in money (always >= 0),
    ``fee`` the fees in money (negative: a rebate)."""

    order_id: int
    ts: int
    side: int
    price: float
    qty: float
    liquidity: str  # MAKER or TAKER
    fee: float
    slippage: float
    tag: str = ""


class Signal(NamedTuple):
    """The newest prediction a strategy may act on: made on event ``seq`` at ``ts`` (so never on an
    event after the current one), the ensemble's probabilities per horizon (in ``horizons`` order)."""

    ts: int
    seq: int
    horizons: tuple[str, ...]
    probs: np.ndarray  # (horizons, 3): p_down, p_flat, p_up

    def direction(self, horizon: int = 0, threshold: float = 0.0) -> int:
        """-1, 0 or +1: the most probable class of ``horizon``, or 0 when its probability is below ``threshold``."""
        p = self.probs[horizon]
        best = int(np.argmax(p))
        return 0 if p[best] < threshold else best - 1


class MarketView(NamedTuple):
    """What a strategy sees after each book event: the book's top, the newest signal and volatility
    forecast, and its own position, cash and working orders (as the strategy knows them: fills are
    reported after the order latency's return trip; see ``backtest.venue``)."""

    ts: int
    seq: int
    bid: float
    ask: float
    bid_size: float
    ask_size: float
    signal: Signal | None
    vol_forecast: float | None  # forecast realized volatility over the next 10 s, bps (None: none yet)
    position: float
    cash: float
    working: dict[int, Order]  # orders sent and not known done or cancelled

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2
