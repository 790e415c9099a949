"""Kraken WebSocket API v1: ``book`` and ``trade`` channels.

Book messages are arrays ``[channelID, {...}, ({...},) channelName, pair]``. The first one for
a pair is the snapshot (``as``/``bs``); updates carry ``a`` and/or ``b`` (possibly in two
objects) with absolute volumes (``"0.00000000"`` deletes), entries ``[price, volume, time(,
"r")]``, and ``c``, the CRC32 checksum of the top 10 levels after the update. The client keeps
its book to the subscribed depth (``book-1000`` -> 1000 levels a side).

Checksum (https://docs.kraken.com/api/docs/guides/spot-ws-book-v1): for the 10 best asks
(lowest first) then the 10 best bids (highest first), take price and volume as Kraken prints
them, remove the ``.`` and leading zeros, concatenate all, CRC32 as an unsigned integer. The
printed precision is the pair's, learnt from the snapshot's strings.
"""

from __future__ import annotations

import zlib

import orjson

from operators.book import OrderBook
from operators.feeds.common import BadMessage, arrays, decimal_seconds_to_ns, levels, price, size
from operators.sync import SequenceRule
from quantumflow.events import BookDelta, BookSnapshot, MarketEvent, RawMessage, Trade

EXCHANGE = "kraken"
_IGNORED_EVENTS = ("heartbeat", "systemStatus", "pong")


def decode(raw: RawMessage) -> list[MarketEvent]:
    message = orjson.loads(raw.payload)
    if type(message) is dict:
        return _event(message)
    if type(message) is not list or len(message) < 4:
        raise BadMessage("expected a JSON object or a [channelID, data, channelName, pair] array")
    channel, pair = message[-2], message[-1]
    if not isinstance(channel, str) or not isinstance(pair, str):
        raise BadMessage("channel name and pair must be strings")
    instrument = f"{EXCHANGE}:{pair}"
    if channel.startswith("book"):
        return [_book(instrument, channel, message[1:-2], raw.receive_ts)]
    if channel == "trade":
        return [_trade(instrument, row, raw.receive_ts) for row in arrays(message[1], "trades", 4)]
    raise BadMessage(f"unknown Kraken channel {channel!r}")


def _event(message: dict) -> list[MarketEvent]:
    event = message.get("event")
    if event in _IGNORED_EVENTS or (event == "subscriptionStatus" and message.get("status") != "error"):
        return []
    if event == "subscriptionStatus":
        raise BadMessage(f"venue error: {message.get('errorMessage')!r}")
    raise BadMessage(f"unknown Kraken event {event!r}")


def _book(instrument: str, channel: str, parts: list, receive_ts: int) -> BookSnapshot | BookDelta:
    if any(type(part) is not dict for part in parts):
        raise BadMessage("book message parts must be JSON objects")
    if len(parts) == 1 and ("as" in parts[0] or "bs" in parts[0]):
        snapshot = parts[0]
        asks, bids = _entries(snapshot.get("as", [])), _entries(snapshot.get("bs", []))
        return BookSnapshot(
            instrument,
            _latest_time(asks, bids),
            receive_ts,
            None,
            levels(bids),
            levels(asks),
            max_depth=_depth(channel),
            precision=_precision(asks or bids),
        )
    asks: list = []
    bids: list = []
    checksum = None
    for part in parts:
        asks.extend(_entries(part.get("a", [])))
        bids.extend(_entries(part.get("b", [])))
        checksum = part.get("c", checksum)
    if checksum is None or not str(checksum).isdigit():
        raise BadMessage(f"book update without a valid checksum: {checksum!r}")
    return BookDelta(
        instrument, _latest_time(asks, bids), receive_ts, None, None, None, levels(bids), levels(asks), int(checksum)
    )


def _trade(instrument: str, row: list, receive_ts: int) -> Trade:
    side = row[3]
    if side not in ("b", "s"):
        raise BadMessage(f"unknown trade side {side!r}")
    return Trade(
        instrument,
        decimal_seconds_to_ns(row[2]),
        receive_ts,
        None,
        price(row[0]),
        size(row[1]),
        1 if side == "b" else -1,
    )


def _entries(value: object) -> list[list]:
    return arrays(value, "book entries", 3)  # [price, volume, time(, "r")]


def _latest_time(*sides: list) -> int | None:
    return max((decimal_seconds_to_ns(entry[2]) for side in sides for entry in side), default=None)


def _depth(channel: str) -> int:
    _, _, depth = channel.partition("-")
    if not depth.isdigit():
        raise BadMessage(f"book channel without a depth: {channel!r}")
    return int(depth)


def _precision(entries: list) -> tuple[int, int] | None:
    if not entries:
        return None
    price_text, volume_text = entries[0][0], entries[0][1]
    if not isinstance(price_text, str) or not isinstance(volume_text, str):
        raise BadMessage(f"book entries must print price and volume as strings, got {entries[0]!r}")
    return _decimals(price_text), _decimals(volume_text)


def _decimals(text: str) -> int:
    return len(text.partition(".")[2])


def checksum(book: OrderBook) -> int:
    """Kraken's CRC32 of the book's 10 best asks then 10 best bids, printed at its precision."""
    price_decimals, size_decimals = book.precision
    asks = book.asks.items()[:10]
    bids = book.bids.items()[-10:][::-1]
    text = "".join(_digits(p, price_decimals) + _digits(q, size_decimals) for p, q in asks + bids)
    return zlib.crc32(text.encode())


def _digits(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}".replace(".", "").lstrip("0")


class ChecksumRule(SequenceRule):
    """No sequence ids; every update's checksum must match the book after it."""

    def check(self, book: OrderBook, delta: BookDelta) -> str | None:
        if delta.checksum is None or book.precision is None:
            return None
        ours = checksum(book)
        if ours != delta.checksum:
            return f"checksum mismatch: venue {delta.checksum}, book {ours}"
        return None
