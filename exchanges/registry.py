"""The local venues ``quantumflow fake-exchange`` serves, by venue name. Each is a class built as
``Class(venue, recordings, speed=X, loop=B)`` (ValueError or RecordingError for bad input), with
``start(host, port)`` (returns itself; port 0: any free one), ``stop()``, ``ws_url``/``http_url``
and ``settings()``: the environment variables that point a client at it. Named as ``module:Class``
so that choosing one imports only it."""

from __future__ import annotations

import importlib

EXCHANGES = {
    "binance": "exchanges.binance:BinanceExchange",
    "binance_usdm": "exchanges.binance:BinanceExchange",
    "coinbase": "exchanges.coinbase:CoinbaseExchange.from_recordings",
}


def exchange_class(venue: str):
    if venue not in EXCHANGES:
        raise ValueError(f"no local exchange for {venue!r}: one of {', '.join(EXCHANGES)}")
    module, name = EXCHANGES[venue].split(":")
    found = importlib.import_module(module)
    for attribute in name.split("."):
        found = getattr(found, attribute)
    return found
