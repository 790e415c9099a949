"""The venue clients ``quantumflow ingest`` runs, by venue name: ``module:Class`` and the keyword
arguments its constructor takes besides the symbols (each class is built as ``Class(symbols, **kwargs)``
and has ``async run(emit, stop)`` and ``stats``). Named so that choosing one imports only it."""

from __future__ import annotations

import importlib

VENUES: dict[str, tuple[str, dict]] = {
    "binance": ("venues.binance:BinanceClient", {"feed": "binance"}),
    "binance_usdm": ("venues.binance:BinanceClient", {"feed": "binance_usdm"}),
    "coinbase": ("venues.coinbase:CoinbaseClient", {}),
}


def client_for(venue: str, symbols: list[str]):
    """The client of ``venue`` for ``symbols``; ValueError for a venue not in the table."""
    if venue not in VENUES:
        raise ValueError(f"unknown venue {venue!r}: one of {', '.join(VENUES)}")
    if not symbols:
        raise ValueError("no symbols given")
    path, kwargs = VENUES[venue]
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)(symbols, **kwargs)
