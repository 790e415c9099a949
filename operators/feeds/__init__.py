"""Every wire protocol QuantumFlow reads, and ``parse``, which never raises.

A feed names one wire protocol: its exchange (the first half of the instrument key), its
stateless decoder (raw bytes -> normalized events, ``BadMessage`` for anything its protocol
does not allow) and its sequence rule (how its books stay in sync, see ``operators.sync``).

What the venue sent wrong is a ``ValueError`` (``BadMessage``, malformed JSON, a bad number) or
a ``KeyError`` (a missing field). Any other exception out of a decoder is a bug in the decoder:
it still becomes a dead letter, so nothing is lost, but its reason starts with
``DECODER_ERROR`` and it is counted apart, so that a bug never passes for bad input.
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


def fast_decoder(name: str) -> Callable[[RawMessage], MarketEvent | None] | None:
    """The fast path of a feed's decoder, where it has one: a message's one event, or None where the
    feed's ``decode`` must be asked (it then decodes the message otherwise, or says why it cannot).
    It never raises."""
    feed = FEEDS.get(name)
    return getattr(feed.decode, "fast", None) if feed is not None else None


def get_feed(name: str) -> Feed:
    try:
        return FEEDS[name]
    except KeyError:
        raise ValueError(f"unknown feed {name!r}; known feeds: {', '.join(FEEDS)}") from None


DECODER_ERROR = "decoder error"


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
    except ValueError as error:
        reason = str(error) or type(error).__name__
    except Exception as error:  # a bug: it must not take the flow down, nor pass for bad input
        reason = f"{DECODER_ERROR}: {type(error).__name__}: {error}"
    return [DeadLetter(raw.feed, None, raw.receive_ts, raw.payload, reason)]


def is_decoder_error(letter: DeadLetter) -> bool:
    """Whether a dead letter is a decoder's bug rather than what the venue sent."""
    return letter.reason.startswith(DECODER_ERROR)
