"""Binance spot and USD-M / COIN-M futures market streams.

Messages come in the combined-stream envelope ``{"stream": ..., "data": {...}}`` (bare event
objects are accepted too), except the REST depth snapshot, the bare ``GET /api/v3/depth``
(``/fapi/v1/depth``, ``/dapi/v1/depth``) response, which names no symbol and takes it from the
transport's key. Diff depth events carry ``U``..``u``; futures add ``pu``, the previous event's
``u``. ``bookTicker`` shares the diff stream's update-id space, so the book can tell which of the
two is newer.

Sync (https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams, "How to
manage a local order book correctly", and the futures equivalent): buffer diffs, take a
snapshot, drop diffs with ``u <= lastUpdateId`` (futures: ``u < lastUpdateId``), the first
applied diff spans it (spot ``U <= lastUpdateId + 1 <= u``; futures ``U <= lastUpdateId <= u``),
then each diff continues the last (spot ``U == previous u + 1``; futures ``pu == previous u``).

Decoding has two paths. The fast one (``operators.feeds.binance_fast``) decodes the messages Binance
sends by the million into typed structs in one pass and accepts only what the plain path below would
accept, to the same events; anything else, bad input included, goes to the plain path, which says
what is wrong.
"""

from __future__ import annotations

import orjson

from operators.feeds import binance_fast
from operators.feeds.common import BadMessage, integer, levels, ms_to_ns, price, size
from operators.sync import ConsecutiveRule
from quantumflow.events import BestBidOffer, BookDelta, BookSnapshot, MarketEvent, RawMessage, Trade


def decoder(exchange: str):
    """The decoder for one Binance market (``binance``, ``binance_usdm``, ``binance_coinm``)."""
    fast = binance_fast.decoder(exchange)

    def decode(raw: RawMessage) -> list[MarketEvent]:
        event = fast(raw)
        return [event] if event is not None else decode_plain(raw)

    def decode_plain(raw: RawMessage) -> list[MarketEvent]:
        message = orjson.loads(raw.payload)
        if type(message) is not dict:
            raise BadMessage("expected a JSON object")
        if "lastUpdateId" in message:
            return [_snapshot(exchange, message, raw)]
        data = message.get("data", message)
        if type(data) is not dict:
            raise BadMessage("'data' must be a JSON object")
        kind = data.get("e")
        if kind is None and "u" in data and "b" in data and "a" in data and "B" in data:
            kind = "bookTicker"  # the spot bookTicker payload has no event type
        handler = _HANDLERS.get(kind) if type(kind) is str else None
        if handler is None:
            if "result" in message and "id" in message:
                return []  # the answer to a (un)subscribe request
            raise BadMessage(f"unknown Binance event type {kind!r}")
        return [handler(f"{exchange}:{_symbol(data)}", data, raw.receive_ts)]

    decode.fast, decode.plain = fast, decode_plain  # the two paths, which the tests compare
    return decode


def _symbol(data: dict) -> str:
    symbol = data["s"]
    if not isinstance(symbol, str) or not symbol:
        raise BadMessage(f"bad symbol {symbol!r}")
    return symbol


def _snapshot(exchange: str, message: dict, raw: RawMessage) -> BookSnapshot:
    if not raw.key:
        raise BadMessage("depth snapshot names no symbol and the transport gave none")
    event_time = message.get("E")
    return BookSnapshot(
        f"{exchange}:{raw.key}",
        None if event_time is None else ms_to_ns(event_time),
        raw.receive_ts,
        integer(message, "lastUpdateId"),
        levels(message["bids"]),
        levels(message["asks"]),
    )


def _depth(instrument: str, data: dict, receive_ts: int) -> BookDelta:
    previous = data.get("pu")
    if previous is not None and type(previous) is not int:
        raise BadMessage(f"field 'pu' must be an integer, got {previous!r}")
    first, last = integer(data, "U"), integer(data, "u")
    if first > last:
        raise BadMessage(f"update ids run backwards: U={first} > u={last}")
    return BookDelta(
        instrument, ms_to_ns(data["E"]), receive_ts, first, last, previous, levels(data["b"]), levels(data["a"])
    )


def _book_ticker(instrument: str, data: dict, receive_ts: int) -> BestBidOffer:
    event_time = data.get("E", data.get("T"))
    return BestBidOffer(
        instrument,
        None if event_time is None else ms_to_ns(event_time),
        receive_ts,
        integer(data, "u"),
        price(data["b"]),
        size(data["B"]),
        price(data["a"]),
        size(data["A"]),
    )


def _trade(instrument: str, data: dict, receive_ts: int) -> Trade:
    trade_id = integer(data, "t" if data["e"] == "trade" else "a")
    buyer_is_maker = data["m"]
    if type(buyer_is_maker) is not bool:
        raise BadMessage(f"field 'm' must be a boolean, got {buyer_is_maker!r}")
    return Trade(
        instrument,
        ms_to_ns(data["T"]),
        receive_ts,
        trade_id,
        price(data["p"]),
        size(data["q"]),
        -1 if buyer_is_maker else 1,
    )


_HANDLERS = {"depthUpdate": _depth, "bookTicker": _book_ticker, "trade": _trade, "aggTrade": _trade}


class SpotRule(ConsecutiveRule):
    def bridges(self, delta: BookDelta, snapshot_sequence: int | None) -> bool:
        return delta.first_sequence <= snapshot_sequence + 1 <= delta.sequence


class FuturesRule(SpotRule):
    def superseded(self, delta: BookDelta, snapshot_sequence: int | None) -> bool:
        return delta.sequence < snapshot_sequence

    def bridges(self, delta: BookDelta, snapshot_sequence: int | None) -> bool:
        return delta.first_sequence <= snapshot_sequence <= delta.sequence

    def follows(self, delta: BookDelta, last: int | None) -> bool:
        return delta.prev_sequence == last
