"""The L2 order book of one instrument.

Each side is a ``BookSide``: a plain dict (price -> absolute quantity) and the prices of its best
levels in a sorted list, best last, so that a change to a known price is a dict write, a new or
removed price near the top one bisect and one move of the list's tail (changes come mostly near the
top), one further down a dict write alone, and the best levels a slice.

The book only ever holds what the venue told it: a snapshot resets it, a delta sets absolute
quantities (0 removes a level), and when it can no longer be trusted (gap, bad checksum, crossed)
it is emptied and marked stale until the next snapshot, because a wrong book is worse than none.

Venues with a finer best-bid/offer stream than their depth stream (Binance ``bookTicker``)
share one update-id space between the two; the book's top then comes from whichever of the
two is newer by update id (``top_of_book``), while ``depth_top`` is the depth stream's alone.

``operators.book_reference`` keeps the first implementation (two ``SortedDict``s), which the
property tests hold this one to, bit for bit.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator
from operator import neg
from typing import NamedTuple

import numpy as np

from quantumflow.events import BestBidOffer, BookDelta, BookSnapshot, Level

_NO_FLOOR = float("-inf")
_MISSING_LEVEL = (math.nan, 0.0)  # price, size of a level a flat view pads with

WAITING = "waiting for snapshot"
LIVE = "live"
STALE = "stale"


class TopOfBook(NamedTuple):
    bid_price: float
    bid_size: float
    ask_price: float
    ask_size: float


class TopLevels(NamedTuple):
    """The best ``n`` levels per side, best first; missing levels have price NaN, size 0."""

    bid_prices: np.ndarray
    bid_sizes: np.ndarray
    ask_prices: np.ndarray
    ask_sizes: np.ndarray


class BookSide:
    """One side of a book: price -> quantity, read as a dict sorted by price is (ascending).

    ``levels`` is a plain dict; ``ranked`` holds prices as sort keys from the worse levels to the best:
    bids their prices, asks their prices negated (``sign``). The best level is then last on both
    sides, and as most changes come near the top, a new or removed price moves little of the list.
    Only the top of a deep side is ranked: keys at or above ``floor``, every one of them (all of the
    side while ``floor`` is -inf). Past ``MAX_RANKED`` keys the list is cut back to the best ``TOP``, so
    that changes below them are dict writes alone; under ``MIN_RANKED`` it is ranked anew (so that
    reads of the best few stay slices), as it is before any read of the whole side in order."""

    __slots__ = ("floor", "levels", "ranked", "sign")

    TOP = 64  # (64, 256, 16): 2 to 5% faster file -> book than (256, 1024, 32) on the Binance recordings
    MAX_RANKED = 256
    MIN_RANKED = 16  # at least the levels the features read, so that their reads stay slices

    def __init__(self, levels: Iterable[Level] = (), sign: float = 1.0) -> None:
        self.levels: dict[float, float] = dict(levels)
        self.sign = sign
        self._rank_all()

    def _rank_all(self) -> None:
        self.ranked: list[float] = sorted(self.levels) if self.sign > 0 else sorted([-p for p in self.levels])
        self.floor = _NO_FLOOR

    def _all_ranked(self) -> list[float]:
        if self.floor != _NO_FLOOR:
            self._rank_all()
        return self.ranked

    def __len__(self) -> int:
        return len(self.levels)

    def __contains__(self, price: object) -> bool:
        return price in self.levels

    def __getitem__(self, price: float) -> float:
        return self.levels[price]

    def get(self, price: float, default=None):
        return self.levels.get(price, default)

    def __iter__(self) -> Iterator[float]:
        return iter(self.keys())

    def __reversed__(self) -> Iterator[float]:
        ranked = self._all_ranked()
        return reversed(ranked) if self.sign > 0 else map(neg, ranked)

    def __eq__(self, other: object) -> bool:
        return self.levels == (other.levels if isinstance(other, BookSide) else other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"BookSide({self.items()!r})"

    def __reduce__(self):
        return BookSide, (self.items(), self.sign)

    def keys(self) -> list[float]:
        """The prices, ascending."""
        ranked = self._all_ranked()
        return list(ranked) if self.sign > 0 else [-key for key in reversed(ranked)]

    def values(self) -> list[float]:
        return list(map(self.levels.__getitem__, self.keys()))

    def items(self) -> list[Level]:
        """(price, quantity) in ascending price order."""
        prices = self.keys()
        return list(zip(prices, map(self.levels.__getitem__, prices), strict=True))

    def best(self, n: int) -> list[Level]:
        """The best ``n`` levels, best first."""
        ranked = self.ranked if n <= len(self.ranked) else self._all_ranked()
        keys = ranked[: -n - 1 : -1]
        prices = keys if self.sign > 0 else [-key for key in keys]
        return list(zip(prices, map(self.levels.__getitem__, prices), strict=True))

    def best_flat(self, n: int) -> tuple[float, ...]:
        """``best(n)`` as one flat tuple of prices and sizes, padded to ``2 n`` values with (NaN, 0)."""
        ranked = self.ranked if n <= len(self.ranked) else self._all_ranked()
        keys = ranked[: -n - 1 : -1]
        prices = keys if self.sign > 0 else [-key for key in keys]
        flat = prices * 2  # a list of the right length, then filled in place
        flat[::2] = prices
        flat[1::2] = map(self.levels.__getitem__, prices)
        return tuple(flat) + _MISSING_LEVEL * (n - len(prices))

    def best_key(self) -> float | None:
        """The best level's key (its price, negated on the ask side), or None on an empty side."""
        ranked = self.ranked or self._all_ranked()
        return ranked[-1] if ranked else None

    def peekitem(self, index: int = -1) -> Level:
        """The level at ``index`` in ascending price order."""
        ranked = self._all_ranked()
        price = ranked[index] if self.sign > 0 else -ranked[-1 - index]
        return price, self.levels[price]

    def popitem(self, index: int = -1) -> Level:
        ranked = self._all_ranked()
        price = ranked.pop(index) if self.sign > 0 else -ranked.pop(-1 - index)
        return price, self.levels.pop(price)

    def keep_best(self, n: int) -> None:
        """Drop all but the best ``n`` levels."""
        excess = len(self.levels) - n
        if excess > 0:
            ranked = self._all_ranked()
            sign, levels = self.sign, self.levels
            for key in ranked[:excess]:
                del levels[key * sign]
            del ranked[:excess]

    def set_levels(self, changes: list[Level]) -> None:
        """Set each (price, quantity) in turn, a zero quantity removing the price."""
        ranked = self.ranked
        apply_changes(self.levels, ranked, self.floor, self.sign > 0, changes)
        ranked_count = len(ranked)
        if ranked_count > self.MAX_RANKED:
            del ranked[: ranked_count - self.TOP]
            self.floor = ranked[0]
        elif ranked_count < self.MIN_RANKED and self.floor != _NO_FLOOR:
            self._rank_all()


def python_apply_changes(
    levels: dict[float, float], ranked: list[float], floor: float, bids: bool, changes: list[Level]
) -> None:
    """``BookSide.set_levels``' loop: each (price, quantity) set in turn on a side's ``levels`` and its
    ``ranked`` keys (prices on the bid side, negated prices on the ask side; those at or above ``floor``)."""
    pop = levels.pop
    if bids:
        for price, quantity in changes:
            if quantity:
                if price >= floor and price not in levels:  # below the ranked top: a dict write alone
                    insort(ranked, price)
                levels[price] = quantity
            elif pop(price, None) is not None and price >= floor:  # one lookup: quantities are never None
                del ranked[bisect_left(ranked, price)]
    else:
        ceiling = -floor  # of the prices ranked
        for price, quantity in changes:
            if quantity:
                if price <= ceiling and price not in levels:
                    insort(ranked, -price)
                levels[price] = quantity
            elif pop(price, None) is not None and price <= ceiling:
                del ranked[bisect_left(ranked, -price)]


try:  # the same loop in C (operators/_book_kernel.c), which the install builds where it finds a C compiler
    from operators._book_kernel import apply_changes
except ImportError:
    apply_changes = python_apply_changes


class OrderBook:
    __slots__ = (
        "_depth_flat",
        "_depth_levels",
        "asks",
        "bbo",
        "bids",
        "max_depth",
        "precision",
        "sequence",
        "stale_reason",
        "status",
    )

    def __init__(self) -> None:
        self.bids = BookSide()
        self.asks = BookSide(sign=-1.0)
        self.sequence: int | None = None
        self.status = WAITING
        self.stale_reason: str | None = None
        self.max_depth: int | None = None
        self.precision: tuple[int, int] | None = None
        self.bbo: BestBidOffer | None = None
        self._depth_levels: tuple[int, list[Level], list[Level]] | None = None  # top levels until the depth changes
        self._depth_flat: tuple[int, tuple[float, ...], tuple[float, ...]] | None = None  # the same, flat and padded

    @property
    def ready(self) -> bool:
        """True when the book mirrors the venue's: synced and not stale."""
        return self.status == LIVE

    def describe(self) -> str:
        return f"{self.status}: {self.stale_reason}" if self.status == STALE else self.status

    # -- changes -------------------------------------------------------------------------

    def apply_snapshot(self, snapshot: BookSnapshot) -> None:
        self._depth_levels = self._depth_flat = None
        self.bids = BookSide({p: q for p, q in snapshot.bids if q}.items())
        self.asks = BookSide({p: q for p, q in snapshot.asks if q}.items(), -1.0)
        self.sequence = snapshot.sequence
        self.max_depth = snapshot.max_depth
        if snapshot.precision is not None:
            self.precision = snapshot.precision
        self.status = LIVE
        self.stale_reason = None
        self._truncate()

    def apply_delta(self, delta: BookDelta) -> bool:
        """Apply a delta; True when it leaves the book crossed (``crossed``, asked after every delta)."""
        self._depth_levels = self._depth_flat = None
        self.bids.set_levels(delta.bids)
        self.asks.set_levels(delta.asks)
        if delta.sequence is not None:
            self.sequence = delta.sequence
        if self.max_depth is not None:
            self._truncate()
        return self.crossed()

    def apply_bbo(self, bbo: BestBidOffer) -> None:
        last = self.bbo
        if last is None or (bbo.sequence is not None and (last.sequence is None or bbo.sequence > last.sequence)):
            self.bbo = bbo  # the newer by update id, as in _newer

    def invalidate(self, reason: str) -> None:
        """Forget every level: the book is stale until the next snapshot."""
        self._depth_levels = self._depth_flat = None
        self.bids = BookSide()
        self.asks = BookSide(sign=-1.0)
        self.status = STALE
        self.stale_reason = reason

    def _truncate(self) -> None:
        depth = self.max_depth
        if depth is None:
            return
        self.bids.keep_best(depth)
        self.asks.keep_best(depth)

    # -- reads ---------------------------------------------------------------------------

    def crossed(self) -> bool:
        """True when the depth book's best bid is at or above its best ask."""
        bid, ask = self.bids.best_key(), self.asks.best_key()
        return bid is not None and ask is not None and bid >= -ask

    def depth_top(self) -> TopOfBook | None:
        """Best bid and ask of the depth stream alone, or None while a side is empty."""
        if not self.bids or not self.asks:
            return None
        bid_price, bid_size = self.bids.peekitem(-1)
        ask_price, ask_size = self.asks.peekitem(0)
        return TopOfBook(bid_price, bid_size, ask_price, ask_size)

    def top_of_book(self) -> TopOfBook | None:
        """The freshest best bid and ask the venue has given: the best-bid/offer stream's when it
        is newer by update id than the last depth update applied, else the depth book's."""
        bbo = self._fresher_bbo()
        if bbo is not None:
            return TopOfBook(bbo.bid_price, bbo.bid_size, bbo.ask_price, bbo.ask_size)
        return self.depth_top()

    @property
    def top_update_id(self) -> int | None:
        """The venue update id of what ``top_of_book`` shows: the best-bid/offer's when it is fresher."""
        bbo = self._fresher_bbo()
        return self.sequence if bbo is None else bbo.sequence

    def top_level_lists(self, n: int = 10) -> tuple[list[Level], list[Level]]:
        """The best ``n`` (price, size) levels per side, best first, with the fresher
        best-bid/offer on top as in ``top_of_book``: the depth levels it has overtaken are gone."""
        cached = self._depth_levels
        if cached is not None and cached[0] == n:
            _, bids, asks = cached
        else:
            bids = self.bids.best(n)
            asks = self.asks.best(n)
            self._depth_levels = (n, bids, asks)
        bbo = self._fresher_bbo()
        if bbo is not None:
            bid, ask = bbo.bid_price, bbo.ask_price
            first_bid = first_ask = 0  # the depth levels below the best bid, above the best ask
            while first_bid < len(bids) and bids[first_bid][0] >= bid:
                first_bid += 1
            while first_ask < len(asks) and asks[first_ask][0] <= ask:
                first_ask += 1
            bids = [(bid, bbo.bid_size), *bids[first_bid : first_bid + n - 1]]
            asks = [(ask, bbo.ask_size), *asks[first_ask : first_ask + n - 1]]
        return bids, asks

    def top_levels_flat(self, n: int = 10) -> tuple[float, ...]:
        """``top_level_lists`` as one flat tuple of ``4 n`` floats: the bids' price and size, best
        first, then the asks'; a missing level is (NaN, 0). No list per call: the depth part is kept
        flat until the depth changes, and a fresher best bid/offer is put on top of slices of it."""
        cached = self._depth_flat
        if cached is None or cached[0] != n:
            cached = self._depth_flat = (n, self.bids.best_flat(n), self.asks.best_flat(n))
        _, bids, asks = cached
        bbo = self._fresher_bbo()
        if bbo is None:
            return bids + asks
        bid, ask, end = bbo.bid_price, bbo.ask_price, 2 * n
        first_bid = first_ask = 0  # the depth levels below the best bid, above the best ask (NaN padding stops both)
        while first_bid < end and bids[first_bid] >= bid:
            first_bid += 2
        while first_ask < end and asks[first_ask] <= ask:
            first_ask += 2
        padding = _MISSING_LEVEL * n
        bid_side = (bid, bbo.bid_size, *bids[first_bid:], *padding)[:end]
        ask_side = (ask, bbo.ask_size, *asks[first_ask:], *padding)[:end]
        return bid_side + ask_side

    def top_levels(self, n: int = 10) -> TopLevels:
        bids, asks = self.top_level_lists(n)
        bid_prices, bid_sizes = _side_arrays(bids, n)
        ask_prices, ask_sizes = _side_arrays(asks, n)
        return TopLevels(bid_prices, bid_sizes, ask_prices, ask_sizes)

    def _fresher_bbo(self) -> BestBidOffer | None:
        bbo = self.bbo
        if bbo is not None and self.status == LIVE and _newer(bbo.sequence, self.sequence):
            return bbo
        return None


def _newer(sequence: int | None, than: int | None) -> bool:
    return sequence is not None and (than is None or sequence > than)


def _side_arrays(levels: list[Level], n: int) -> tuple[np.ndarray, np.ndarray]:
    prices = np.full(n, np.nan)
    sizes = np.zeros(n)
    if levels:
        filled = np.asarray(levels, dtype=float)
        prices[: len(levels)] = filled[:, 0]
        sizes[: len(levels)] = filled[:, 1]
    return prices, sizes
