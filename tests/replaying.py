"""Messages through the flow's own path (parse -> key by instrument -> ``InstrumentState``, as
``dataflows.batches.InstrumentStates`` runs it), with what the sync made of every event: what the
book tests look at."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from dataflows.batches import InstrumentStates
from dataflows.sources import BATCH_MESSAGES
from operators.book import OrderBook
from quantumflow.events import DeadLetter, MarketEvent, RawMessage

AfterEvent = Callable[[MarketEvent, RawMessage, list, OrderBook], None]


class Replayed:
    """``outputs``: every sync output and dead letter, in order per instrument; ``after_event`` is
    called after each event with its outputs and its instrument's book as the event left it."""

    def __init__(self, after_event: AfterEvent | None = None) -> None:
        self.outputs: list = []
        self.after_event = after_event
        self.states = InstrumentStates(observe=self._observe)

    def feed(self, messages: Iterable[RawMessage | DeadLetter], batch_messages: int = BATCH_MESSAGES) -> list:
        """Replay ``messages`` in the flow's batches; what came out of them."""
        start = len(self.outputs)
        for step in self.states.replay(messages, batch_messages):
            self.outputs += step.dead_letters
        return self.outputs[start:]

    def book(self, instrument: str) -> OrderBook:
        return self.states.book(instrument)

    def of_type(self, kind: type) -> list:
        return [out for out in self.outputs if type(out) is kind]

    def _observe(self, event: MarketEvent, raw: RawMessage, outputs: list) -> None:
        self.outputs += outputs
        if self.after_event is not None:
            self.after_event(event, raw, outputs, self.states.book(event.instrument))
