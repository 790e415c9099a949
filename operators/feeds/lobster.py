"""LOBSTER (https://lobsterdata.com) message + orderbook file pairs, as a feed.

Row i of the message file is an event at the exchange; row i of the orderbook file is the
book (10 levels: ask price, ask size, bid price, bid size; prices x 10^4) *after* it. A raw
LOBSTER record is our framing of what one row needs, three lines::

    <row number>,<message line>
    <orderbook line before the message; empty for the first row>
    <orderbook line after the message>

The first row becomes a snapshot of the 10 visible levels; every later row a delta (the
levels that differ between the two orderbook lines, a level that left the top 10 set to 0),
numbered by its row so a missing row is a gap. Executions of visible (4) and hidden (5) orders
are also trades, the aggressor being opposite the resting order's direction.
"""

from __future__ import annotations

from operators.feeds.common import BadMessage, price
from quantumflow.events import BookDelta, BookSnapshot, Level, MarketEvent, RawMessage, Trade

EXCHANGE = "lobster"
LEVELS = 10
PRICE_SCALE = 10_000
_EMPTY_ASK = 9_999_999_999
_EXECUTIONS = {4, 5}


def decode(raw: RawMessage) -> list[MarketEvent]:
    if not raw.key:
        raise BadMessage("LOBSTER record without its ticker")
    instrument = f"{EXCHANGE}:{raw.key}"
    try:
        head, before, after = raw.payload.decode("ascii").split("\n")
        row_text, *message = head.split(",")
        if len(message) != 6:
            raise ValueError(f"a message line has 6 fields, got {len(message)}")
        row = int(row_text)
        kind, order_id, order_size, order_price, direction = (int(field) for field in message[1:])
    except ValueError as error:  # UnicodeDecodeError is one too
        raise BadMessage(f"not a LOBSTER record: {error}") from error
    if direction not in (1, -1) or order_size < 0:
        raise BadMessage(f"bad direction {direction} or size {order_size}")
    ts = raw.receive_ts
    bids, asks = _book_row(after)
    if before:
        old_bids, old_asks = _book_row(before)
        event: MarketEvent = BookDelta(
            instrument, ts, ts, row, row, row - 1, _changes(old_bids, bids), _changes(old_asks, asks)
        )
    else:
        event = BookSnapshot(instrument, ts, ts, row, _levels(bids), _levels(asks), max_depth=LEVELS)
    if kind not in _EXECUTIONS:
        return [event]
    trade = Trade(instrument, ts, ts, order_id, price(order_price / PRICE_SCALE), float(order_size), -direction)
    return [event, trade]


def _book_row(line: str) -> tuple[dict[int, int], dict[int, int]]:
    values = [int(v) for v in line.split(",")]
    if len(values) != 4 * LEVELS:
        raise BadMessage(f"an orderbook line has {4 * LEVELS} fields, got {len(values)}")
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    for level in range(LEVELS):
        ask_price, ask_size, bid_price, bid_size = values[4 * level : 4 * level + 4]
        if ask_size < 0 or bid_size < 0:
            raise BadMessage("negative size in orderbook line")
        if ask_size and ask_price != _EMPTY_ASK:
            price(ask_price / PRICE_SCALE)
            asks[ask_price] = ask_size
        if bid_size and bid_price != -_EMPTY_ASK:
            price(bid_price / PRICE_SCALE)
            bids[bid_price] = bid_size
    return bids, asks


def _levels(side: dict[int, int]) -> list[Level]:
    return [(p / PRICE_SCALE, float(q)) for p, q in side.items()]


def _changes(before: dict[int, int], after: dict[int, int]) -> list[Level]:
    removed = [(p / PRICE_SCALE, 0.0) for p in before if p not in after]
    changed = [(p / PRICE_SCALE, float(q)) for p, q in after.items() if before.get(p) != q]
    return removed + changed
