"""A market maker that quotes both sides and leans its quotes on the prediction (the seed's first use case).

At each view, with the signal's probabilities at ``horizon`` (none yet: no skew, fully unsure):

- reservation price r = mid x (1 + (skew_bps x (p_up - p_down) - inventory_bps x position / max_inventory) / 1e4):
  it leans towards the predicted move and away from the inventory held (by ``inventory_bps`` at full
  inventory);
- half spread h = half_spread_bps + widen_bps x (uncertainty + max(0, vol / trailing vol - 1)), where
  uncertainty is the normalised entropy of the three probabilities (0: sure, 1: all equal) and vol the
  10 s volatility forecast against its trailing level (``backtest.risk.VolatilityGauge``);
- bid r x (1 - h / 1e4) rounded down to the tick, ask r x (1 + h / 1e4) rounded up; a quote that would
  cross the market sits at the best price of its own side instead;
- the bid is dropped when a fill of ``qty`` would take the position above ``max_inventory``, the ask when
  below -``max_inventory`` (the position known from reported fills);
- a side is requoted (cancel, then a new order) only when its wanted price moved by ``requote_bps`` or
  more from the working quote's, after a fill, or when its quote is gone.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from backtest.follow import horizon_index
from backtest.orders import BUY, SELL, Cancel, Fill, MarketView, Order, Request
from backtest.risk import VolatilityGauge
from quantumflow.horizons import Horizon

LN3 = math.log(3)


def uncertainty(probs: np.ndarray) -> float:
    """Normalised entropy of (p_down, p_flat, p_up): 0 when one class is certain, 1 when all are equal."""
    p = np.clip(np.asarray(probs, dtype=float), 1e-12, 1.0)
    p = p / p.sum()
    return float(-(p * np.log(p)).sum() / LN3)


class MarketMaker:
    name = "market-maker"

    def __init__(
        self,
        qty: float = 0.01,
        half_spread_bps: float = 0.0,
        skew_bps: float = 2.0,
        widen_bps: float = 0.5,
        max_inventory: float = 0.05,
        inventory_bps: float = 1.0,
        horizon: str = "10s",
        requote_bps: float = 0.5,
        tick: float = 0.01,
    ) -> None:
        if qty <= 0 or max_inventory < qty:
            raise ValueError(f"need 0 < qty <= max_inventory, not qty {qty} and max_inventory {max_inventory}")
        if min(half_spread_bps, widen_bps, requote_bps, inventory_bps) < 0 or tick <= 0:
            raise ValueError("half_spread_bps, widen_bps, inventory_bps and requote_bps must be >= 0 and tick > 0")
        self.qty = float(qty)
        self.half_spread_bps = float(half_spread_bps)
        self.inventory_bps = float(inventory_bps)
        self.skew_bps = float(skew_bps)
        self.widen_bps = float(widen_bps)
        self.max_inventory = float(max_inventory)
        self.horizon = Horizon.parse(str(horizon))
        self.requote_bps = float(requote_bps)
        self.tick = float(tick)
        self.gauge = VolatilityGauge()
        self._ids = itertools.count(1)
        self._quotes: dict[int, Order] = {}  # side -> the quote working on it, as sent
        self._filled_since_quote = False

    def params(self) -> dict:
        return {
            "qty": self.qty,
            "half_spread_bps": self.half_spread_bps,
            "inventory_bps": self.inventory_bps,
            "skew_bps": self.skew_bps,
            "widen_bps": self.widen_bps,
            "max_inventory": self.max_inventory,
            "horizon": self.horizon.name,
            "requote_bps": self.requote_bps,
            "tick": self.tick,
        }

    def on_fill(self, fill: Fill) -> None:
        self._filled_since_quote = True

    def wanted(self, view: MarketView) -> dict[int, float]:
        """The prices wanted now per side (a side absent: not quoted)."""
        vol, level = self.gauge.see(view)
        if view.signal is None:
            lean, unsure = 0.0, 1.0
        else:
            probs = view.signal.probs[horizon_index(view.signal.horizons, self.horizon)]
            lean, unsure = self.skew_bps * float(probs[2] - probs[0]), uncertainty(probs)
        vol_excess = max(0.0, vol / level - 1) if level else 0.0
        half = self.half_spread_bps + self.widen_bps * (unsure + vol_excess)
        reservation = view.mid * (1 + (lean - self.inventory_bps * view.position / self.max_inventory) / 1e4)
        prices = {}
        if view.position + self.qty <= self.max_inventory + 1e-12:
            bid = math.floor(reservation * (1 - half / 1e4) / self.tick + 1e-9) * self.tick
            prices[BUY] = view.bid if bid >= view.ask else bid
        if view.position - self.qty >= -self.max_inventory - 1e-12:
            ask = math.ceil(reservation * (1 + half / 1e4) / self.tick - 1e-9) * self.tick
            prices[SELL] = view.ask if ask <= view.bid else ask
        return prices

    def on_event(self, view: MarketView) -> list[Request]:
        prices = self.wanted(view)
        refresh = self._filled_since_quote
        self._filled_since_quote = False
        requests: list[Request] = []
        for side in (BUY, SELL):
            quote = self._quotes.get(side)
            if quote is not None and quote.id not in view.working:  # filled, or refused by the venue
                del self._quotes[side]
                quote = None
            price = prices.get(side)
            if quote is not None:
                moved = price is None or abs(price - quote.price) >= self.requote_bps / 1e4 * quote.price
                if not (moved or refresh):
                    continue
                requests.append(Cancel(quote.id))
                del self._quotes[side]
            if price is not None:
                order = Order(next(self._ids), side, self.qty, round(price, 10), tag="quote")
                self._quotes[side] = order
                requests.append(order)
        return requests
