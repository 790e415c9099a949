"""Book states gathered into arrays, one row per book event, for the batch feature functions.

The flow applies events to the book one at a time; after each book event the instrument's top
levels are copied into a ``FrameBuilder`` row. ``build()`` turns the gathered rows into a
``BookFrame`` of NumPy arrays, so the features of a whole batch are computed at once.
Trades do not make rows: their volumes are added to the next book event's row, which is the
first moment a feature can see them.
"""

from __future__ import annotations

import struct
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


_ROW = struct.Struct(f"=5q{4 * LEVELS}d3d")  # ids, levels, trades: one row of the gathered bytes
_ROW_DTYPE = np.dtype([("ids", "=i8", 5), ("levels", "=f8", (2, LEVELS, 2)), ("trades", "=f8", 3)])


class FrameBuilder:
    """Rows of book states for one instrument, gathered until ``build()`` as packed bytes (one
    ``struct`` call per row; ``build`` wraps the bytes without parsing them)."""

    __slots__ = ("_buy", "_count", "_rows", "_sell")

    def __init__(self) -> None:
        # per row: ts, seq, exchange_ts, update_id, reset; the bid levels, then the ask levels, each as
        # price, size; buy volume, sell volume, trade count
        self._rows = bytearray()
        self._buy = self._sell = 0.0
        self._count = 0

    def __len__(self) -> int:
        return len(self._rows) // _ROW.size

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
        self._rows += _ROW.pack(
            ts,
            seq,
            NO_ID if exchange_ts is None else exchange_ts,
            NO_ID if update_id is None else update_id,
            reset,
            *book.top_levels_flat(LEVELS),
            self._buy,
            self._sell,
            self._count,
        )
        self._buy = self._sell = 0.0
        self._count = 0

    def build(self) -> BookFrame:
        """The gathered rows as arrays; the builder starts empty again (pending trades stay)."""
        rows = np.frombuffer(self._rows, dtype=_ROW_DTYPE)
        ids, levels, trades = rows["ids"], rows["levels"], rows["trades"]  # levels: row, side, level, price/size
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
        self._rows = bytearray()
        return frame
