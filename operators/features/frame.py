"""Book states gathered into arrays, one row per book event, for the batch feature functions.

The flow applies events to the book one at a time; after each book event the instrument's top
levels are copied into a ``FrameBuilder`` row. ``build()`` turns the gathered rows into a
``BookFrame`` of NumPy arrays, so the features of a whole batch are computed at once.
Trades do not make rows: their volumes are added to the next book event's row, which is the
first moment a feature can see them.
"""

from __future__ import annotations

from array import array
from itertools import chain
from typing import NamedTuple

import numpy as np

from operators.book import OrderBook
from quantumflow.features import LEVELS

NO_ID = -1  # exchange_ts / update_id when the venue gives none


class BookFrame(NamedTuple):
    ts: np.ndarray  # int64, local receive time ns
    seq: np.ndarray  # int64, the event's number in its instrument's stream
    exchange_ts: np.ndarray  # int64, NO_ID when absent
    update_id: np.ndarray  # int64, NO_ID when absent
    bid_prices: np.ndarray  # (n, LEVELS), best first, NaN where the book has fewer levels
    bid_sizes: np.ndarray  # (n, LEVELS), 0 where missing
    ask_prices: np.ndarray
    ask_sizes: np.ndarray
    buy_volume: np.ndarray  # traded size since the previous book event, buyer-initiated
    sell_volume: np.ndarray
    trade_count: np.ndarray
    reset: np.ndarray  # bool: first state after a snapshot (no increments across it)

    def __len__(self) -> int:
        return len(self.ts)

    def rows(self, part: slice) -> BookFrame:
        """The frame of the rows in ``part``."""
        return BookFrame(*(column[part] for column in self))


_PAD_LEVELS = (float("nan"), 0.0) * LEVELS  # a missing level: price NaN, size 0
_flatten = chain.from_iterable


class FrameBuilder:
    """Rows of book states for one instrument, gathered until ``build()`` (in flat C arrays:
    appending a row is a few C-level copies, and ``build`` wraps the memory without parsing it)."""

    __slots__ = ("_buy", "_count", "_ids", "_levels", "_sell", "_trades")

    def __init__(self) -> None:
        self._ids = array("q")  # ts, seq, exchange_ts, update_id, reset per row
        self._levels = array("d")  # per row the bid levels, then the ask levels, each as price, size
        self._trades = array("d")  # buy volume, sell volume, trade count per row
        self._buy = self._sell = 0.0
        self._count = 0

    def __len__(self) -> int:
        return len(self._ids) // 5

    def add_trade(self, size: float, side: int) -> None:
        if side > 0:
            self._buy += size
        elif side < 0:
            self._sell += size
        self._count += 1

    def add_book(
        self, book: OrderBook, ts: int, seq: int, exchange_ts: int | None, update_id: int | None, reset: bool
    ) -> None:
        """Copy the book's top levels as the state after the event ``seq``."""
        bids, asks = book.top_level_lists(LEVELS)
        levels = self._levels
        if len(bids) == LEVELS and len(asks) == LEVELS:
            levels.extend(_flatten((*bids, *asks)))
        else:
            levels.extend(_flatten(bids))
            levels.extend(_PAD_LEVELS[2 * len(bids) :])
            levels.extend(_flatten(asks))
            levels.extend(_PAD_LEVELS[2 * len(asks) :])
        self._ids.extend(
            (ts, seq, NO_ID if exchange_ts is None else exchange_ts, NO_ID if update_id is None else update_id, reset)
        )
        self._trades.extend((self._buy, self._sell, self._count))
        self._buy = self._sell = 0.0
        self._count = 0

    def build(self) -> BookFrame:
        """The gathered rows as arrays; the builder starts empty again (pending trades stay)."""
        n = len(self)
        ids = np.frombuffer(self._ids, dtype=np.int64).reshape(n, 5)
        levels = np.frombuffer(self._levels, dtype=np.float64).reshape(n, 2, LEVELS, 2)  # row, side, level, price/size
        trades = np.frombuffer(self._trades, dtype=np.float64).reshape(n, 3)
        frame = BookFrame(
            ids[:, 0].copy(),
            ids[:, 1].copy(),
            ids[:, 2].copy(),
            ids[:, 3].copy(),
            levels[:, 0, :, 0].copy(),
            levels[:, 0, :, 1].copy(),
            levels[:, 1, :, 0].copy(),
            levels[:, 1, :, 1].copy(),
            trades[:, 0].copy(),
            trades[:, 1].copy(),
            trades[:, 2].copy(),
            ids[:, 4].astype(bool),
        )
        self._ids, self._levels, self._trades = array("q"), array("d"), array("d")
        return frame
