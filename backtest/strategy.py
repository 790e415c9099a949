"""The one interface every strategy implements (follow the signal, the random null, the market maker,
the execution algorithm, the risk overlay around any of them)."""

from __future__ import annotations

from typing import Protocol

from backtest.orders import Fill, MarketView, Request


class Strategy(Protocol):
    name: str

    def on_event(self, view: MarketView) -> list[Request]:
        """Called after every book event (the book live, both sides present) with what the strategy
        may know then; returns the orders and cancels to send now (they reach the venue after the
        order latency)."""
        ...

    def on_fill(self, fill: Fill) -> None:
        """Told of each fill of its orders when the report reaches it."""
        ...

    def params(self) -> dict:
        """Its settings, as stored with the results."""
        ...
