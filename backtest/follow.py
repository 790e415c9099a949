"""Follow the ensemble's signal, and the random-direction null that trades at the same moments.

Both run one state machine on the signals (each acted on once, by its ``seq``): when flat, a signal
whose class at ``horizon`` is up or down with probability >= ``threshold`` enters with a market order
of ``qty``; the position is held for the horizon (a time horizon: until the view's time reaches entry
+ horizon; an event horizon: until that many changes of the best bid or offer have been seen) or until
a signal the other way above the threshold, which exits and, on the same signal, enters the other way.
``RandomSignal`` runs the same machine on the same signals and only draws each entry's side by a seeded
coin flip, so its trades come at exactly the same views, as many, with directions that know nothing.
"""

from __future__ import annotations

import itertools
import random

from backtest.orders import Fill, MarketView, Order
from quantumflow.horizons import Horizon

QTY_EPS = 1e-12


def expected_position(view: MarketView, filled: dict[int, float]) -> float:
    """The position once the market orders in flight are done: the known position plus what the working
    market orders still have to fill (``filled``: quantity already reported per order id). Limit orders
    are not counted: they may never fill."""
    pending = sum(o.side * max(o.qty - filled.get(o.id, 0.0), 0.0) for o in view.working.values() if o.price is None)
    return view.position + pending


def horizon_index(signal_horizons: tuple[str, ...], horizon: Horizon) -> int:
    try:
        return signal_horizons.index(horizon.name)
    except ValueError:
        raise ValueError(
            f"the signal has no horizon {horizon.name!r}: it predicts {', '.join(signal_horizons)}"
        ) from None


class BboCounter:
    """Counts the changes of the best bid or offer (price or size) seen in views: the clock of event
    horizons (``operators.labels``: an event is such a change)."""

    def __init__(self) -> None:
        self.count = 0
        self._top: tuple[float, float, float, float] | None = None

    def see(self, view: MarketView) -> int:
        top = (view.bid, view.bid_size, view.ask, view.ask_size)
        if top != self._top:
            if self._top is not None:
                self.count += 1
            self._top = top
        return self.count


class FollowSignal:
    name = "follow"

    def __init__(self, horizon: str = "10s", threshold: float = 0.5, qty: float = 0.1) -> None:
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold must be a probability in [0, 1], not {threshold}")
        if qty <= 0:
            raise ValueError(f"qty must be positive, not {qty}")
        self.horizon = Horizon.parse(str(horizon))
        self.threshold = float(threshold)
        self.qty = float(qty)
        self._ids = itertools.count(1)
        self._bbo = BboCounter()
        self._filled: dict[int, float] = {}
        self._last_seq: int | None = None
        self._held = 0  # the signal direction of the position held (0: flat)
        self._entry_ts = 0
        self._entry_changes = 0

    def params(self) -> dict:
        return {"horizon": self.horizon.name, "threshold": self.threshold, "qty": self.qty}

    def on_fill(self, fill: Fill) -> None:
        self._filled[fill.order_id] = self._filled.get(fill.order_id, 0.0) + fill.qty

    def on_event(self, view: MarketView) -> list[Order]:
        changes = self._bbo.see(view)
        direction = self._new_direction(view)
        orders: list[Order] = []
        if self._held:
            if direction == self._held and self._expired(view.ts, changes):
                self._start_hold(view.ts, changes)  # renewed by a signal the same way: no trade out and back in
            elif direction == -self._held or self._expired(view.ts, changes):
                orders += self._exit(view)
        if not self._held and direction:
            self._held = direction
            self._start_hold(view.ts, changes)
            orders.append(Order(next(self._ids), self._entry_side(direction), self.qty, tag="entry"))
        return orders

    def _entry_side(self, direction: int) -> int:
        return direction

    def _new_direction(self, view: MarketView) -> int:
        signal = view.signal
        if signal is None or signal.seq == self._last_seq:
            return 0
        self._last_seq = signal.seq
        return signal.direction(horizon_index(signal.horizons, self.horizon), self.threshold)

    def _start_hold(self, ts: int, changes: int) -> None:
        self._entry_ts, self._entry_changes = ts, changes

    def _expired(self, ts: int, changes: int) -> bool:
        if self.horizon.events:
            return changes - self._entry_changes >= self.horizon.events
        return ts >= self._entry_ts + self.horizon.ns

    def _exit(self, view: MarketView) -> list[Order]:
        self._held = 0
        position = expected_position(view, self._filled)
        if abs(position) <= QTY_EPS:  # the entry filled nothing (refused by a limit): nothing to undo
            return []
        return [Order(next(self._ids), -1 if position > 0 else 1, abs(position), tag="exit")]


class RandomSignal(FollowSignal):
    """The null: ``FollowSignal``'s moments and trade count, each entry's side a seeded coin flip."""

    name = "random"

    def __init__(self, horizon: str = "10s", threshold: float = 0.5, qty: float = 0.1, seed: int = 0) -> None:
        super().__init__(horizon, threshold, qty)
        self.seed = int(seed)
        self._coin = random.Random(self.seed)

    def params(self) -> dict:
        return {**super().params(), "seed": self.seed}

    def _entry_side(self, direction: int) -> int:
        return 1 if self._coin.random() < 0.5 else -1
