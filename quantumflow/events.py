"""The normalized event schema every part of QuantumFlow speaks.

Parsing (``operators.feeds``) turns an exchange's wire messages into these; nothing downstream
knows a wire format. Events are ``NamedTuple``s: immutable, compact and cheap to create, since
one is made per exchange message and Bytewax pickles them between workers.

Time: integers, nanoseconds since the Unix epoch, UTC. ``receive_ts`` is the local receive
time; ``exchange_ts`` is the venue's own time for the message, or ``None`` when the venue's
message carries none (Binance spot ``bookTicker`` and REST depth snapshots).

Levels are ``(price, quantity)`` pairs of floats. Quantities are absolute (the size resting at
that price after the change); a quantity of 0 removes the level.
"""

from __future__ import annotations

from typing import NamedTuple

Level = tuple[float, float]


def instrument_key(exchange: str, symbol: str) -> str:
    """The key Bytewax state and every stored row are keyed by: ``exchange:symbol``."""
    return f"{exchange}:{symbol}"


def split_instrument(instrument: str) -> tuple[str, str]:
    """``"binance:BTCUSDT"`` -> ``("binance", "BTCUSDT")``."""
    exchange, _, symbol = instrument.partition(":")
    if not exchange or not symbol:
        raise ValueError(f"instrument must look like 'exchange:symbol', got {instrument!r}")
    return exchange, symbol


class RawMessage(NamedTuple):
    """One entry of the log of record: the bytes exactly as the venue sent them.

    ``feed`` names the wire protocol (see ``operators.feeds.FEEDS``); ``key`` is the symbol
    when the transport knows it (the Kafka key, or the recording's symbol), which the few
    messages that do not name their own symbol (Binance REST snapshots) need.
    """

    feed: str
    receive_ts: int
    payload: bytes
    key: str | None = None


class BookSnapshot(NamedTuple):
    """The whole visible book. ``max_depth`` is the number of levels per side the venue keeps
    the client's book to (Kraken's subscribed depth, LOBSTER's 10), ``None`` when unbounded.
    ``precision`` is ``(price decimals, size decimals)`` as the venue prints them, when known."""

    instrument: str
    exchange_ts: int | None
    receive_ts: int
    sequence: int | None
    bids: list[Level]
    asks: list[Level]
    max_depth: int | None = None
    precision: tuple[int, int] | None = None


class BookDelta(NamedTuple):
    """Changed levels with absolute quantities.

    Sequence ids are the venue's: ``first_sequence``..``sequence`` is the range of update ids
    the message covers (Binance ``U``..``u``; equal when the venue numbers messages singly),
    ``prev_sequence`` the id of the message before it when the venue says (Binance futures
    ``pu``). ``checksum`` is the venue's checksum of the book after the change, if it sends one.
    """

    instrument: str
    exchange_ts: int | None
    receive_ts: int
    first_sequence: int | None
    sequence: int | None
    prev_sequence: int | None
    bids: list[Level]
    asks: list[Level]
    checksum: int | None = None


class Trade(NamedTuple):
    """A print. ``side`` is the aggressor: +1 buyer-initiated, -1 seller-initiated, 0 unknown."""

    instrument: str
    exchange_ts: int | None
    receive_ts: int
    trade_id: int | None
    price: float
    size: float
    side: int


class BestBidOffer(NamedTuple):
    """Top of book from a venue's dedicated stream, with its update id (Binance ``bookTicker``)."""

    instrument: str
    exchange_ts: int | None
    receive_ts: int
    sequence: int | None
    bid_price: float
    bid_size: float
    ask_price: float
    ask_size: float


class Resync(NamedTuple):
    """The book of ``instrument`` can no longer be trusted and needs a new snapshot.

    Emitted on a sequence gap, a checksum mismatch or a crossed book; the book stays stale
    (unusable downstream) until the next snapshot is applied. ``sequence`` is the last id
    applied before the break.
    """

    instrument: str
    exchange_ts: int | None
    receive_ts: int
    sequence: int | None
    reason: str


class DeadLetter(NamedTuple):
    """A message that could not be used, kept with its raw bytes and why."""

    feed: str
    instrument: str | None
    receive_ts: int
    raw: bytes
    reason: str


MarketEvent = BookSnapshot | BookDelta | Trade | BestBidOffer
Event = BookSnapshot | BookDelta | Trade | BestBidOffer | Resync
