"""A venue's own order book: integer ticks to integer lots per side, with a log of changed levels.

This is the matching side of a venue (queues are added to, cancelled from and taken by market
orders), not a client's mirror of one, which ``operators.book.OrderBook`` is. Every change to a
level is logged as ``(side, tick, lots)`` with the level's new total, which is what both venues'
depth streams publish.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from sortedcontainers import SortedDict

BID, ASK = 0, 1
Level = tuple[int, int]


class BookState(NamedTuple):
    """A venue's book as a client that parsed its messages holds it: prices and sizes are the
    floats of the decimal strings the venue prints, so they compare exactly with a rebuilt book."""

    sequence: int
    bids: dict[float, float]
    asks: dict[float, float]


def book_state(book: VenueBook, sequence: int, price: Callable[[int], str], size: Callable[[int], str]) -> BookState:
    bids, asks = ({float(price(tick)): float(size(lots)) for tick, lots in side.items()} for side in book.sides)
    return BookState(sequence, bids, asks)


class VenueBook:
    __slots__ = ("changes", "sides")

    def __init__(self) -> None:
        self.sides: tuple[SortedDict, SortedDict] = (SortedDict(), SortedDict())
        self.changes: list[tuple[int, int, int]] = []

    def best(self, side: int) -> Level:
        return self.sides[side].peekitem(-1 if side == BID else 0)

    def depth(self, side: int) -> int:
        return len(self.sides[side])

    def at_rank(self, side: int, rank: int) -> Level:
        """The level ``rank`` places from the touch (0 is the best)."""
        return self.sides[side].peekitem(-1 - rank if side == BID else rank)

    def add(self, side: int, tick: int, lots: int) -> None:
        levels = self.sides[side]
        total = levels.get(tick, 0) + lots
        levels[tick] = total
        self.changes.append((side, tick, total))

    def reduce(self, side: int, tick: int, lots: int) -> None:
        levels = self.sides[side]
        total = levels[tick] - lots
        if total > 0:
            levels[tick] = total
        else:
            total = 0
            del levels[tick]
        self.changes.append((side, tick, total))

    def take(self, side: int, lots: int, max_levels: int) -> list[Level]:
        """A market order for ``lots`` against ``side``, best level first; returns the fills.

        It takes at most ``max_levels`` levels and never the side's last one (what is left of
        the order is cancelled, as an immediate-or-cancel order's would be)."""
        fills: list[Level] = []
        levels = self.sides[side]
        index = -1 if side == BID else 0
        while lots > 0 and len(fills) < max_levels:
            tick, resting = levels.peekitem(index)
            if resting > lots:
                self.reduce(side, tick, lots)
                fills.append((tick, lots))
                break
            if len(levels) == 1:
                break
            self.reduce(side, tick, resting)
            fills.append((tick, resting))
            lots -= resting
        return fills

    def prune(self, low: int, high: int) -> None:
        """Cancel every level outside ``low..high`` (never a side's best)."""
        for side, levels in enumerate(self.sides):
            far, best = (0, -1) if side == BID else (-1, 0)
            while len(levels) > 1:
                tick, lots = levels.peekitem(far)
                if low <= tick <= high or tick == levels.peekitem(best)[0]:
                    break
                self.reduce(side, tick, lots)

    def levels(self, side: int, limit: int | None = None) -> list[Level]:
        """The side's levels, best first."""
        items = self.sides[side].items()
        if side == BID:
            return list(reversed(items[-limit:] if limit else items))
        return list(items[:limit] if limit else items)
