"""The order flow of one venue: which event comes next and what it does to the book.

Events arrive as a Poisson stream whose intensities depend on the book and on the venue's
reference price ``r`` (where its makers and informed traders think the price is). With
``lean = tanh((r - mid) / signal_scale)`` and the L1 imbalance ``(bid size - ask size) / (sum)``:

* limit orders come more on the side ``r`` points to and on the longer queue's side. Makers
  want to quote at ``r`` -+ the half spread: they join the touch when that is within a tick or
  two of it, improve it (moving the best queue's size along when the move is far), or rest
  behind it; the rest of the limit orders rest deeper, a gamma-distributed distance behind the
  touch, with sizes growing with the distance;
* cancellations come more on the side ``r`` points away from and on the shorter queue's side,
  one order at a time, near the touch (geometric in rank) or, at a rate per level, anywhere;
* market orders buy more when ``r`` is above the mid and when the bid queue is the longer; they
  take the best levels one after the other, one print per maker order filled;
* a best quote that ``r`` has left behind (or that crosses the other venue's, for arbitrageurs)
  is pulled by its makers or picked off by takers, a part of the queue at a time, at a rate
  growing with how far behind it is.

A queue that runs out moves the touch, so the side being built up is the side the price is
about to move to: the L1 imbalance predicts the next mid change, noisily.
"""

from __future__ import annotations

import math

from simulator.book import ASK, BID, VenueBook
from simulator.config import VenueModel
from simulator.draws import Draws

MAX_LEVELS_TAKEN = 8
Print = tuple[int, int, int]  # tick, lots, aggressor (+1 buyer-initiated, -1 seller-initiated)


class OrderFlow:
    def __init__(self, model: VenueModel, book: VenueBook, draws: Draws) -> None:
        self.model = model
        self.book = book
        self.draws = draws
        self.lots_per_unit = 10**model.size_decimals
        self.trades: list[Print] = []

    def step(self, reference: float, ask_floor: float, bid_ceiling: float) -> float:
        """Play one event. A best ask below ``ask_floor`` or a best bid above ``bid_ceiling`` is
        stale. Returns the total event rate (per second) the event was drawn at."""
        model, book, uniform = self.model, self.book, self.draws.uniform
        bid, bid_lots = book.best(BID)
        ask, ask_lots = book.best(ASK)
        rates = (
            model.pull_rate_per_tick * max(0.0, ask_floor - ask),
            model.pull_rate_per_tick * max(0.0, bid - bid_ceiling),
            model.level_cancel_per_s * book.depth(BID),
            model.level_cancel_per_s * book.depth(ASK),
        )
        total = model.events_per_s + sum(rates)
        pick = uniform() * total
        for kind, rate in enumerate(rates):
            if pick < rate:
                if kind < 2:
                    self._pull(ASK, ask, ask_lots) if kind == 0 else self._pull(BID, bid, bid_lots)
                else:
                    self._cancel(BID if kind == 2 else ASK, near=False)
                return total
            pick -= rate
        pick /= model.events_per_s
        lean = math.tanh((reference - 0.5 * (bid + ask)) / model.signal_scale_ticks)
        imbalance = (bid_lots - ask_lots) / (bid_lots + ask_lots)
        if pick < model.limit_share:
            tilt = model.limit_tilt * lean + model.limit_imbalance_tilt * imbalance
            self._limit(BID if uniform() < 0.5 * (1 + tilt) else ASK, reference, bid, ask)
        elif pick < model.limit_share + model.cancel_share:
            tilt = model.cancel_tilt * lean + model.cancel_imbalance_tilt * imbalance
            self._cancel(BID if uniform() < 0.5 * (1 - tilt) else ASK, near=True)
        else:
            tilt = model.market_tilt * lean + model.imbalance_tilt * imbalance
            size = min(model.market_cap, self.draws.lognormal(model.market_size, model.market_sigma))
            self._take(ASK if uniform() < 0.5 * (1 + tilt) else BID, size)
        return total

    def seed(self, reference: float, orders: int) -> None:
        """A starting book: one level each side of ``reference``, then ``orders`` limit orders."""
        half = self.model.half_spread_ticks
        self.book.add(BID, math.floor(reference - half), self.lots_per_unit // 10)
        self.book.add(ASK, math.ceil(reference + half), self.lots_per_unit // 10)
        for i in range(orders):
            self._limit(i % 2, reference, self.book.best(BID)[0], self.book.best(ASK)[0])

    def _limit(self, side: int, reference: float, bid: int, ask: int) -> None:
        model, draws = self.model, self.draws
        sign = 1 if side == BID else -1  # in signed ticks (sign * tick), better prices are larger
        best, other = (bid, ask) if side == BID else (ask, bid)
        best, other = sign * best, sign * other
        wanted = sign * round(reference - sign * model.half_spread_ticks)
        lots = self._order_lots(0)
        if draws.uniform() >= model.touch_share:
            behind = 1 + int(0.5 * model.depth_scale_ticks * (draws.exponential() + draws.exponential()))
            tick = min(wanted, best) - behind
            lots = self._order_lots(best - tick)
        elif wanted > best:
            tick = min(wanted, other - 1)
            if tick - best > model.join_band_ticks:  # the best queue's makers move up with it
                best_lots = self.book.best(side)[1]
                lots = min(best_lots, lots * model.reprice_size)
                if lots < best_lots or self.book.depth(side) > 1:
                    self.book.reduce(side, sign * best, lots)
        elif wanted >= best - model.join_band_ticks:
            tick = best
        else:
            tick = wanted
        self.book.add(side, sign * tick, lots)

    def _order_lots(self, distance: int) -> int:
        """The size of one limit order ``distance`` ticks behind the touch: larger further away."""
        model = self.model
        size = self.draws.lognormal(model.touch_size * (1 + distance / model.size_growth_ticks), model.size_sigma)
        return max(1, int(size * self.lots_per_unit))

    def _cancel(self, side: int, near: bool) -> None:
        """One order leaves a level: near the touch (geometric in rank), or anywhere."""
        book, draws = self.book, self.draws
        depth = book.depth(side)
        if near:
            rank = min(int(self.model.cancel_rank_mean * draws.exponential()), depth - 1)
        else:
            rank = int(draws.uniform() * depth)
        tick, lots = book.at_rank(side, rank)
        cancelled = min(lots, self._order_lots(abs(tick - book.best(side)[0])))
        if cancelled < lots or depth > 1:
            book.reduce(side, tick, cancelled)

    def _take(self, side: int, size: float) -> None:
        """A market order of ``size`` base units against ``side``."""
        self._fills(side, self.book.take(side, max(1, int(size * self.lots_per_unit)), MAX_LEVELS_TAKEN))

    def _pull(self, side: int, tick: int, lots: int) -> None:
        """Part of a stale best queue goes at once (its makers all see the same price move):
        they cancel, or a taker picks it off."""
        uniform = self.draws.uniform
        chunk = min(lots, max(self._order_lots(0), int(lots * (0.15 + 0.5 * uniform()))))
        if uniform() < self.model.pull_take_share:
            self._fills(side, self.book.take(side, chunk, 1))
        elif chunk < lots or self.book.depth(side) > 1:
            self.book.reduce(side, tick, chunk)

    def _fills(self, side: int, fills: list[tuple[int, int]]) -> None:
        """Prints for what a market order took: a level's size is split among a few makers."""
        aggressor = 1 if side == ASK else -1
        draws = self.draws
        for tick, lots in fills:
            makers = min(lots, 1 + int(self.model.prints_per_level * draws.exponential()))
            for _ in range(makers - 1):
                part = max(1, int(lots * draws.uniform() * 0.6))
                if part >= lots:
                    break
                self.trades.append((tick, part, aggressor))
                lots -= part
            self.trades.append((tick, lots, aggressor))
