"""Every wire protocol QuantumFlow reads, and ``parse``, which never raises.

A feed names one wire protocol: its exchange (the first half of the instrument key), its
stateless decoder (raw bytes -> normalized events, ``BadMessage`` for anything its protocol
does not allow) and its sequence rule (how its books stay in sync, see ``operators.sync``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import orjson

from operators.feeds import binance, coinbase, kraken, lobster
from operators.sync import ConsecutiveRule, SequenceRule
from quantumflow.events import DeadLetter, MarketEvent, RawMessage


class Feed(NamedTuple):
    name: str
    exchange: str
    decode: Callable[[RawMessage], list[MarketEvent]]
    rule: type[SequenceRule]
    description: str


FEEDS: dict[str, Feed] = {
    feed.name: feed
    for feed in (
        Feed("binance", "binance", binance.decoder("binance"), binance.SpotRule, "Binance spot"),
        Feed(
            "binance_usdm",
            "binance_usdm",
            binance.decoder("binance_usdm"),
            binance.FuturesRule,
            "Binance USD-M futures",
        ),
        Feed(
            "binance_coinm",
            "binance_coinm",
            binance.decoder("binance_coinm"),
            binance.FuturesRule,
            "Binance COIN-M futures",
        ),
        Feed("coinbase", "coinbase", coinbase.decode_exchange, SequenceRule, "Coinbase Exchange feed"),
        Feed("coinbase_advanced", "coinbase", coinbase.decode_advanced, ConsecutiveRule, "Coinbase Advanced Trade"),
        Feed("kraken", "kraken", kraken.decode, kraken.ChecksumRule, "Kraken WebSocket v1"),
        Feed("lobster", "lobster", lobster.decode, ConsecutiveRule, "LOBSTER message + orderbook files"),
    )
}


def get_feed(name: str) -> Feed:
    try:
        return FEEDS[name]
    except KeyError:
        raise ValueError(f"unknown feed {name!r}; known feeds: {', '.join(FEEDS)}") from None


def parse(raw: RawMessage) -> list[MarketEvent] | list[DeadLetter]:
    """Decode one raw message. Never raises: what cannot be decoded becomes a dead letter.

    An empty list means a message that carries no market data (subscription answers,
    heartbeats, ...), which the protocol allows and nothing downstream needs.
    """
    feed = FEEDS.get(raw.feed)
    if feed is None:
        return [DeadLetter(raw.feed, None, raw.receive_ts, raw.payload, f"unknown feed {raw.feed!r}")]
    try:
        return feed.decode(raw)
    except orjson.JSONDecodeError as error:
        reason = f"malformed JSON: {error}"
    except KeyError as error:
        reason = f"missing field {error}"
    except Exception as error:  # a message must never take the flow down; the reason says why
        reason = f"{type(error).__name__}: {error}" if not isinstance(error, ValueError) else str(error)
    return [DeadLetter(raw.feed, None, raw.receive_ts, raw.payload, reason)]
