"""The fast path of the Binance decoder: the messages Binance sends by the million (diff depth,
``bookTicker``, trades, in the combined-stream envelope) decoded into typed structs in one pass,
then into events with as little Python work as possible.

It accepts only what ``operators.feeds.binance``'s plain path accepts, and makes the same event of
it; for anything else it returns None and the plain path decodes the message or says what is wrong
with it. So every struct forbids unknown fields and types every field at least as strictly as the
plain path reads it (a field skipped unread could hold JSON that orjson rejects, such as a number
too large for a double or invalid UTF-8), and integers are held to the range orjson reads as
integers. Levels are read by a lax decoder (decimal strings to floats, checked positive and finite
in C), which rounds as ``float()`` does. Events are made with ``tuple.__new__``, which is what their
``NamedTuple`` constructor does, without its Python frame. The structs are left out of the garbage
collector's passes (``gc=False``): they live for one message and hold nothing that could point back.
"""

from __future__ import annotations

import sys
from typing import Annotated

import msgspec
from msgspec import UNSET, Raw, Struct, UnsetType

from quantumflow.events import BestBidOffer, BookDelta, RawMessage, Trade

Int = Annotated[int, msgspec.Meta(ge=-(1 << 63), le=(1 << 63) - 1)]  # orjson reads ints past 64 bits as floats
Price = Annotated[float, msgspec.Meta(gt=0.0, le=sys.float_info.max)]
Size = Annotated[float, msgspec.Meta(ge=0.0, le=sys.float_info.max)]
MAX_INSTRUMENTS = 10_000  # instrument keys kept per decoder, so that a stream of made-up symbols cannot grow it
_INF = float("inf")
_new = tuple.__new__


class _Depth(Struct, tag_field="e", tag="depthUpdate", forbid_unknown_fields=True, gc=False):
    E: Int
    s: str
    U: Int
    u: Int
    b: Raw
    a: Raw
    T: Int | UnsetType = UNSET
    pu: Int | None = None
    ps: str | UnsetType = UNSET


class _Ticker(Struct, tag_field="e", tag="bookTicker", forbid_unknown_fields=True, gc=False):
    u: Int
    s: str
    b: str
    B: str
    a: str
    A: str
    E: Int | UnsetType | None = UNSET
    T: Int | UnsetType | None = UNSET
    ps: str | UnsetType = UNSET


class _SpotTicker(Struct, forbid_unknown_fields=True, gc=False):
    """Spot ``bookTicker``: no event type, no time."""

    u: Int
    s: str
    b: str
    B: str
    a: str
    A: str


class _Trade(Struct, tag_field="e", tag="trade", forbid_unknown_fields=True, gc=False):
    T: Int
    s: str
    t: Int
    p: str
    q: str
    m: bool
    E: Int | UnsetType = UNSET
    X: str | UnsetType = UNSET
    M: bool | UnsetType = UNSET


class _AggTrade(Struct, tag_field="e", tag="aggTrade", forbid_unknown_fields=True, gc=False):
    T: Int
    s: str
    a: Int
    p: str
    q: str
    m: bool
    E: Int | UnsetType = UNSET
    f: Int | UnsetType = UNSET
    l: Int | UnsetType = UNSET  # noqa: E741 (Binance's name)
    M: bool | UnsetType = UNSET


class _Stream(Struct, forbid_unknown_fields=True, gc=False):
    data: _Depth | _Ticker | _Trade | _AggTrade
    stream: str | UnsetType = UNSET


class _SpotTickerStream(Struct, forbid_unknown_fields=True, gc=False):
    data: _SpotTicker
    stream: str | UnsetType = UNSET


_TYPED = msgspec.json.Decoder(_Stream)
_SPOT_TICKER = msgspec.json.Decoder(_SpotTickerStream)
_LEVELS = msgspec.json.Decoder(list[tuple[Price, Size]], strict=False)
_decode_levels = _LEVELS.decode


def decoder(exchange: str):
    """The fast decoder for one Binance market: raw message -> its one event, or None."""
    instruments: dict[str, str] = {}
    spot = exchange == "binance"  # whose bookTicker has no event type
    decode_typed, decode_spot_ticker = _TYPED.decode, _SPOT_TICKER.decode

    def decode(raw: RawMessage) -> BookDelta | BestBidOffer | Trade | None:
        payload = raw.payload
        try:
            data = (decode_spot_ticker if spot and b'"e":' not in payload else decode_typed)(payload).data
            symbol = data.s
            instrument = instruments.get(symbol)
            if instrument is None:
                if not symbol:
                    return None
                instrument = f"{exchange}:{symbol}"
                if len(instruments) < MAX_INSTRUMENTS:
                    instruments[symbol] = instrument
            kind = type(data)
            if kind is _Depth:  # the most frequent, first
                if data.u < data.U:
                    return None
                return _new(
                    BookDelta,
                    (
                        instrument,
                        data.E * 1_000_000,
                        raw.receive_ts,
                        data.U,
                        data.u,
                        data.pu,
                        _decode_levels(data.b),
                        _decode_levels(data.a),
                        None,
                    ),
                )
            if kind is _Ticker or kind is _SpotTicker:
                bid, bid_size, ask, ask_size = float(data.b), float(data.B), float(data.a), float(data.A)
                if not (0.0 < bid < _INF and 0.0 <= bid_size < _INF and 0.0 < ask < _INF and 0.0 <= ask_size < _INF):
                    return None
                event_time = None
                if kind is _Ticker:
                    event_time = data.E if data.E is not UNSET else (None if data.T is UNSET else data.T)
                return _new(
                    BestBidOffer,
                    (
                        instrument,
                        None if event_time is None else event_time * 1_000_000,
                        raw.receive_ts,
                        data.u,
                        bid,
                        bid_size,
                        ask,
                        ask_size,
                    ),
                )
            trade_price, trade_size = float(data.p), float(data.q)
            if not (0.0 < trade_price < _INF and 0.0 <= trade_size < _INF):
                return None
            return _new(
                Trade,
                (
                    instrument,
                    data.T * 1_000_000,
                    raw.receive_ts,
                    data.t if kind is _Trade else data.a,
                    trade_price,
                    trade_size,
                    -1 if data.m else 1,
                ),
            )
        except Exception:  # not taken here: the plain path reads it, or says why it cannot
            return None

    return decode
