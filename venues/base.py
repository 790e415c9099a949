"""What every venue client hands on, how it counts what it did, and the rules the clients share.

A client keeps one or more connections to its venue and hands each message it receives to ``emit``,
as a ``Received``, in the order it arrived on its connection; the receive time is taken as the frame
comes off the socket. ``emit`` is called on the client's event loop and must not block: whoever
consumes the messages (a recording folder, the raw log in Kafka, the flow) queues them.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple


class Received(NamedTuple):
    """One message as a venue sent it."""

    feed: str  # the wire protocol, as ``operators.feeds.FEEDS`` names it: binance, binance_usdm, coinbase_advanced
    symbol: str  # the venue's symbol of the instrument the connection serves: BTCUSDT, BTC-USD
    connection: str  # which connection brought it (e.g. ``BTCUSDT``, ``BTC-USD.level2``): files and progress
    receive_ns: int  # local receive time, ns since the epoch
    payload: bytes  # the frame, or the REST response, byte for byte


Emit = Callable[[Received], None]


class VenueError(Exception):
    """A user's mistake the venue reports at start (an unknown symbol): the client cannot run."""


@dataclass
class ClientStats:
    """What a client did so far, for the progress line and the summary."""

    messages: Counter[str] = field(default_factory=Counter)  # by connection
    reconnects: int = 0
    resyncs: int = 0  # new snapshots asked for after a gap
    last_error: str | None = None


def backoff_delays(first_s: float = 0.5, cap_s: float = 30.0, rng: random.Random | None = None) -> Iterator[float]:
    """Waits before each retry: exponential with full jitter (uniform in [0, first * 2^n], n capped),
    so many clients cut off together do not come back together."""
    rng = rng or random.Random()
    ceiling = first_s
    while True:
        yield rng.uniform(0, ceiling)
        ceiling = min(cap_s, ceiling * 2)


# The base addresses of the venues' public endpoints; each client adds the venue's documented path
# (``<base>/stream?streams=...``, ``<base>/api/v3/depth?...``), so a local venue is ``ws://127.0.0.1:PORT``.
ENDPOINTS = {
    "QF_BINANCE_WS_URL": "wss://stream.binance.com:9443",
    "QF_BINANCE_REST_URL": "https://api.binance.com",
    "QF_BINANCE_FUTURES_WS_URL": "wss://fstream.binance.com",
    "QF_BINANCE_FUTURES_REST_URL": "https://fapi.binance.com",
    "QF_COINBASE_WS_URL": "wss://advanced-trade-ws.coinbase.com",
}


def endpoint(variable: str) -> str:
    """The base address the environment variable sets, else the venue's production address."""
    return (os.environ.get(variable) or ENDPOINTS[variable]).rstrip("/")
