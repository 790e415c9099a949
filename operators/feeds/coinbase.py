"""Coinbase: the Exchange feed (``ws-feed``) and the Advanced Trade feed.

Exchange feed ``level2``: a ``snapshot`` per product, then ``l2update`` messages whose
``changes`` are ``[side, price, size]`` with absolute sizes (``"0"`` removes the level). The
channel carries no sequence numbers; delivery is guaranteed on the connection. ``match`` and
``last_match`` are trades; ``side`` there is the maker's, so the aggressor is the other side.
https://docs.cdp.coinbase.com/exchange/websocket-feed/channels

Advanced Trade ``level2`` (messages on channel ``l2_data``): events of type ``snapshot`` or
``update`` whose ``updates`` carry ``side`` (``bid``/``offer``), ``price_level`` and
``new_quantity`` (absolute). ``sequence_num`` numbers the messages of one connection; the
project subscribes one product per connection, so a jump in it is a gap in that product's book.
https://docs.cdp.coinbase.com/api-reference/advanced-trade-api/websocket/level2

Advanced Trade ``market_trades``: events of type ``snapshot`` (the last trades before the
subscription) or ``update`` (the trades of the last 250 ms), each listing trades newest first.
``side`` is the maker's, as on the Exchange feed, so ``"SELL"`` is a buyer-initiated print. It
goes on a connection of its own: its messages share the connection's ``sequence_num``.
https://docs.cdp.coinbase.com/api-reference/advanced-trade-api/websocket/market-trades
"""

from __future__ import annotations

import orjson

from operators.feeds.common import BadMessage, arrays, integer, iso_to_ns, levels, objects, price, size
from quantumflow.events import BookDelta, BookSnapshot, Level, MarketEvent, RawMessage, Trade

EXCHANGE = "coinbase"
_IGNORED_TYPES = ("subscriptions", "heartbeat", "ticker", "status")


def decode_exchange(raw: RawMessage) -> list[MarketEvent]:
    message = _object(raw.payload)
    kind = message.get("type")
    if kind == "l2update":
        bids, asks = _split_sides(arrays(message["changes"], "changes", 3), "buy", "sell")
        return [
            BookDelta(_instrument(message), iso_to_ns(message["time"]), raw.receive_ts, None, None, None, bids, asks)
        ]
    if kind == "snapshot":
        exchange_ts = iso_to_ns(message["time"]) if "time" in message else None
        bids, asks = levels(message["bids"]), levels(message["asks"])
        return [BookSnapshot(_instrument(message), exchange_ts, raw.receive_ts, None, bids, asks)]
    if kind in ("match", "last_match"):
        maker_side = message["side"]
        if maker_side not in ("buy", "sell"):
            raise BadMessage(f"unknown trade side {maker_side!r}")
        return [
            Trade(
                _instrument(message),
                iso_to_ns(message["time"]),
                raw.receive_ts,
                integer(message, "trade_id"),
                price(message["price"]),
                size(message["size"]),
                1 if maker_side == "sell" else -1,
            )
        ]
    if kind in _IGNORED_TYPES:
        return []
    if kind == "error":
        raise BadMessage(f"venue error: {message.get('message')!r} {message.get('reason', '')!r}")
    raise BadMessage(f"unknown Coinbase message type {kind!r}")


def decode_advanced(raw: RawMessage) -> list[MarketEvent]:
    message = _object(raw.payload)
    channel = message.get("channel")
    if channel in ("subscriptions", "heartbeats"):
        return []
    if channel == "market_trades":
        return _market_trades(message, raw.receive_ts)
    if channel != "l2_data":
        raise BadMessage(f"unknown Coinbase Advanced Trade channel {channel!r}")
    sequence = integer(message, "sequence_num")
    exchange_ts = iso_to_ns(message["timestamp"])
    out: list[MarketEvent] = []
    for event in objects(message["events"], "events"):
        instrument = _instrument(event)
        bids, asks = _split_sides(
            [(u["side"], u["price_level"], u["new_quantity"]) for u in objects(event["updates"], "updates")],
            "bid",
            "offer",
        )
        kind = event["type"]
        if kind == "snapshot":
            out.append(BookSnapshot(instrument, exchange_ts, raw.receive_ts, sequence, bids, asks))
        elif kind == "update":
            out.append(BookDelta(instrument, exchange_ts, raw.receive_ts, sequence, sequence, None, bids, asks))
        else:
            raise BadMessage(f"unknown level2 event type {kind!r}")
    return out


def _market_trades(message: dict, receive_ts: int) -> list[MarketEvent]:
    out: list[MarketEvent] = []
    for event in objects(message["events"], "events"):
        if event["type"] not in ("snapshot", "update"):
            raise BadMessage(f"unknown market_trades event type {event['type']!r}")
        for trade in reversed(objects(event["trades"], "trades")):  # oldest first
            maker_side = trade["side"]
            if maker_side not in ("BUY", "SELL"):
                raise BadMessage(f"unknown trade side {maker_side!r}")
            trade_id = trade["trade_id"]
            out.append(
                Trade(
                    _instrument(trade),
                    iso_to_ns(trade["time"]),
                    receive_ts,
                    int(trade_id) if isinstance(trade_id, str) and trade_id.isdigit() else None,
                    price(trade["price"]),
                    size(trade["size"]),
                    1 if maker_side == "SELL" else -1,
                )
            )
    out.sort(key=lambda trade: trade.exchange_ts)
    return out


def _object(payload: bytes) -> dict:
    message = orjson.loads(payload)
    if type(message) is not dict:
        raise BadMessage("expected a JSON object")
    return message


def _instrument(message: dict) -> str:
    product = message["product_id"]
    if not isinstance(product, str) or not product:
        raise BadMessage(f"bad product_id {product!r}")
    return f"{EXCHANGE}:{product}"


def _split_sides(changes: list, bid: str, ask: str) -> tuple[list[Level], list[Level]]:
    """``[side, price, size]`` rows (checked to have three items) split into bids and asks."""
    bids: list[Level] = []
    asks: list[Level] = []
    for change in changes:
        side = change[0]
        level = (price(change[1]), size(change[2]))
        if side == bid:
            bids.append(level)
        elif side == ask:
            asks.append(level)
        else:
            raise BadMessage(f"unknown book side {side!r}")
    return bids, asks
