"""Execution algorithms for a parent order (the seed's second use case), measured by implementation shortfall.

Each algorithm works parents back to back over the recording: a parent of ``parent_qty`` starts at the
first view, the next one ``deadline_s`` later (at the first view at or after that time; a gap in the
recording longer than a deadline skips the parents it held), sides alternating buy, sell, buy... so the
run stays flat on average. A parent is cut in ``slices`` equal children sent as market orders:

- ``Twap``: child j at the first view of slice j (slice j is [start + j d, start + (j + 1) d), d =
  deadline / slices);
- ``Immediate``: the whole parent at its start (one child);
- ``PredictiveExecution``: child j as soon as, inside slice j, the signal at ``horizon`` says the price
  is going against the parent (up for a buy, down for a sell) with probability >= ``threshold``;
  otherwise at the end of its slice (the first view at or after it); what is left is sent at the
  deadline.

Per parent: the arrival mid (of the view that starts it), the fills, the average price and the
implementation shortfall in bps against the arrival mid, positive = cost, with fees and slippage in:
side x (average price + side x (fees + slippage) / filled - arrival) / arrival x 1e4.
"""

from __future__ import annotations

import itertools

import numpy as np

from backtest.follow import horizon_index
from backtest.orders import BUY, Fill, MarketView, Order
from quantumflow.horizons import Horizon

NS = 1_000_000_000
COMPLETE = 1 - 1e-9  # a parent filled to within rounding is complete


class _Parent:
    __slots__ = ("arrival_mid", "children", "fees", "filled", "fills", "index", "notional", "side", "slippage", "start")

    def __init__(self, index: int, side: int, start: int, arrival_mid: float) -> None:
        self.index, self.side, self.start, self.arrival_mid = index, side, start, arrival_mid
        self.children = 0
        self.fills = 0
        self.filled = self.notional = self.fees = self.slippage = 0.0


class _ParentSchedule:
    """Parents back to back; subclasses say how many children of the current parent are due by now."""

    name = ""

    def __init__(self, parent_qty: float, deadline_s: float, slices: int) -> None:
        if parent_qty <= 0 or deadline_s <= 0 or slices < 1:
            raise ValueError(
                f"need parent_qty > 0, deadline_s > 0 and slices >= 1, not {parent_qty}, {deadline_s}, {slices}"
            )
        self.parent_qty = float(parent_qty)
        self.deadline_s = float(deadline_s)
        self.slices = int(slices)
        self.deadline_ns = round(self.deadline_s * NS)
        self.slice_ns = self.deadline_ns / self.slices
        self._ids = itertools.count(1)
        self._parents: list[_Parent] = []
        self._parent_of: dict[int, _Parent] = {}
        self._first_ts: int | None = None

    def params(self) -> dict:
        return {"parent_qty": self.parent_qty, "deadline_s": self.deadline_s, "slices": self.slices}

    def on_fill(self, fill: Fill) -> None:
        parent = self._parent_of.get(fill.order_id)
        if parent is None:
            return
        parent.fills += 1
        parent.filled += fill.qty
        parent.notional += fill.price * fill.qty
        parent.fees += fill.fee
        parent.slippage += fill.slippage

    def on_event(self, view: MarketView) -> list[Order]:
        if self._first_ts is None:
            self._first_ts = view.ts
        orders: list[Order] = []
        parent = self._parents[-1] if self._parents else None
        if parent is not None and view.ts >= parent.start + self.deadline_ns:
            orders += self._send(parent, self.slices)  # catch up at the deadline
            parent = None
        if parent is None:
            slot = (view.ts - self._first_ts) // self.deadline_ns
            side = BUY if len(self._parents) % 2 == 0 else -BUY
            parent = _Parent(len(self._parents), side, self._first_ts + slot * self.deadline_ns, view.mid)
            self._parents.append(parent)
        return orders + self._send(parent, self._due(view, parent))

    def _due(self, view: MarketView, parent: _Parent) -> int:
        """How many children of the parent should have been sent by this view."""
        raise NotImplementedError

    def _slices_begun(self, view: MarketView, parent: _Parent) -> int:
        return min(self.slices, int((view.ts - parent.start) // self.slice_ns) + 1)

    def _send(self, parent: _Parent, due: int) -> list[Order]:
        orders = []
        child_qty = self.parent_qty / self.slices
        while parent.children < due:
            order = Order(next(self._ids), parent.side, child_qty, tag="child")
            self._parent_of[order.id] = parent
            parent.children += 1
            orders.append(order)
        return orders

    def parents(self) -> list[dict]:
        out = []
        for p in self._parents:
            average = p.notional / p.filled if p.filled else None
            shortfall = None
            if average is not None:
                effective = average + p.side * (p.fees + p.slippage) / p.filled
                shortfall = p.side * (effective - p.arrival_mid) / p.arrival_mid * 1e4
            out.append(
                {
                    "index": p.index,
                    "side": p.side,
                    "start_ns": p.start,
                    "qty": self.parent_qty,
                    "arrival_mid": p.arrival_mid,
                    "children": p.children,
                    "fills": p.fills,
                    "filled": p.filled,
                    "avg_price": average,
                    "fees": p.fees,
                    "slippage": p.slippage,
                    "shortfall_bps": shortfall,
                    "completed": p.filled >= self.parent_qty * COMPLETE,
                }
            )
        return out


class Twap(_ParentSchedule):
    name = "twap"

    def __init__(self, parent_qty: float = 0.1, deadline_s: float = 30.0, slices: int = 5) -> None:
        super().__init__(parent_qty, deadline_s, slices)

    def _due(self, view: MarketView, parent: _Parent) -> int:
        return self._slices_begun(view, parent)


class Immediate(_ParentSchedule):
    name = "immediate"

    def __init__(self, parent_qty: float = 0.1, deadline_s: float = 30.0) -> None:
        super().__init__(parent_qty, deadline_s, 1)

    def params(self) -> dict:
        return {"parent_qty": self.parent_qty, "deadline_s": self.deadline_s}

    def _due(self, view: MarketView, parent: _Parent) -> int:
        return 1


class PredictiveExecution(_ParentSchedule):
    name = "execution"

    def __init__(
        self,
        parent_qty: float = 0.1,
        deadline_s: float = 30.0,
        slices: int = 5,
        horizon: str = "10s",
        threshold: float = 0.5,
    ) -> None:
        super().__init__(parent_qty, deadline_s, slices)
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold must be a probability in [0, 1], not {threshold}")
        self.horizon = Horizon.parse(str(horizon))
        self.threshold = float(threshold)

    def params(self) -> dict:
        return {**super().params(), "horizon": self.horizon.name, "threshold": self.threshold}

    def _due(self, view: MarketView, parent: _Parent) -> int:
        ended = self._slices_begun(view, parent) - 1
        signal = view.signal
        if signal is not None and ended < self.slices:
            direction = signal.direction(horizon_index(signal.horizons, self.horizon), self.threshold)
            if direction == parent.side:  # the price is expected to move against the parent: do this slice now
                return ended + 1
        return ended


def shortfall_summary(parents: list[dict]) -> dict:
    """Implementation shortfall (bps) over the completed parents (a parent cut off by the end of the
    recording, or partly refused, is counted but left out of the figures)."""
    done = np.array([p["shortfall_bps"] for p in parents if p["completed"]], dtype=float)
    stats = (
        {
            "shortfall_mean_bps": float(done.mean()),
            "shortfall_median_bps": float(np.median(done)),
            "shortfall_std_bps": float(done.std(ddof=0)),
        }
        if len(done)
        else {"shortfall_mean_bps": None, "shortfall_median_bps": None, "shortfall_std_bps": None}
    )
    return {**stats, "parents": len(parents), "parents_completed": len(done)}
