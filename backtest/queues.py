"""Where a resting limit order stands in its price level's queue, estimated from an L2 feed.

An L2 feed shows a level's total quantity, never who is in it, so the quantity ahead of a resting order
is an estimate. It starts as the level's quantity when the order joins (it joins at the back) and then
moves with what the feed shows at that price:

* a trade at the order's price takes from the front of the queue: the quantity ahead falls by its size,
  and what goes past the order's place fills it (the venue does the filling);
* a change of the level's quantity (another participant's order added or cancelled, or the trade
  showing up in the depth) is read by the queue model.

Both models are hftbacktest's (``hftbacktest/src/backtest/models/queue.rs``):

* ``RiskAverseQueue`` (hftbacktest's ``RiskAdverseQueueModel``): only trades advance the order; a
  decrease of the level never does, except that the quantity ahead can never exceed the level's
  quantity (``ahead = min(ahead, new_qty)``): cancels are assumed to come from behind the order.
* ``ProbQueue`` (hftbacktest's ``ProbQueueModel`` with ``PowerProbQueueFunc(n)``): a decrease of the
  level not explained by the trades seen at that price since the last change (``chg = prev - new -
  traded``) comes from behind the order with probability ``p = f(back) / (f(back) + f(front))``,
  ``f(x) = x ** n``, ``front`` the quantity ahead, ``back = prev - front``; the quantity ahead becomes
  ``front - (1 - p) * chg + min(back - p * chg, 0)`` (the part of the decrease the back cannot hold
  comes from the front), and never more than the level's new quantity. An increase leaves the
  quantity ahead alone (new orders join behind).

One departure from hftbacktest, for both: a level change never makes the quantity ahead negative (a
level that empties without a trade was cancelled, not traded: the order is then first, not filled).
"""

from __future__ import annotations


class QueuePosition:
    """One resting order's estimated place: ``ahead`` (quantity in front of it) and ``traded`` (trade
    volume printed at its price since the level's quantity last changed, which ``ProbQueue`` subtracts
    so that a trade is not counted twice, once as a print and again as the level's decrease)."""

    __slots__ = ("ahead", "traded")

    def __init__(self, ahead: float) -> None:
        self.ahead = max(0.0, ahead)
        self.traded = 0.0

    def __repr__(self) -> str:
        return f"QueuePosition(ahead={self.ahead!r}, traded={self.traded!r})"


class RiskAverseQueue:
    name = "risk-averse"

    def trade(self, pos: QueuePosition, reached: float, printed: float) -> None:
        """A print of ``printed`` at the order's price, of which ``reached`` was taken from others' orders
        in the queue (less than ``printed`` when own orders ahead of this one took part of it). The
        quantity ahead may go negative: that much went past the order's place."""
        pos.ahead -= reached
        pos.traded += printed

    def depth(self, pos: QueuePosition, prev_qty: float, new_qty: float) -> None:
        pos.traded = 0.0
        pos.ahead = max(0.0, min(pos.ahead, new_qty))

    def params(self) -> dict:
        return {"queue": self.name}


class ProbQueue(RiskAverseQueue):
    name = "prob"

    def __init__(self, n: float = 3.0) -> None:
        if n <= 0:
            raise ValueError(f"the power of the queue model's probability must be > 0, got {n}")
        self.n = n

    def prob_behind(self, front: float, back: float) -> float:
        """The probability that a decrease of the level came from behind the order."""
        f_back, f_front = back**self.n, front**self.n
        total = f_back + f_front
        return 1.0 if total == 0 else f_back / total

    def depth(self, pos: QueuePosition, prev_qty: float, new_qty: float) -> None:
        change = prev_qty - new_qty - pos.traded
        pos.traded = 0.0
        front = pos.ahead
        if change < 0:  # the level grew (beyond what trades took): new orders joined behind
            pos.ahead = max(0.0, min(front, new_qty))
            return
        back = max(0.0, prev_qty - front)
        p = self.prob_behind(front, back)
        estimate = front - (1.0 - p) * change + min(back - p * change, 0.0)
        pos.ahead = max(0.0, min(estimate, new_qty))

    def params(self) -> dict:
        return {"queue": self.name, "queue_power": self.n}


QueueModel = RiskAverseQueue  # the interface: ProbQueue is one
