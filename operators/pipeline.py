"""Raw messages in, synced books and normalized events out: parse, key by instrument, sync.

``BookBuilder`` is the plain-Python form of the first stages of the predict flow, used by
``quantumflow replay``, the benchmark and tests. It holds one ``BookSync`` per instrument,
the same keyed state the Bytewax flow keeps.
"""

from __future__ import annotations

from operators.feeds import FEEDS, parse
from operators.sync import BookSync, Output
from quantumflow.events import DeadLetter, RawMessage


class BookBuilder:
    def __init__(self) -> None:
        self.syncs: dict[str, BookSync] = {}
        self.quiet_messages = 0  # valid messages with no market data (heartbeats, acks, ...)

    def process(self, raw: RawMessage) -> list[Output]:
        events = parse(raw)
        if not events:
            self.quiet_messages += 1
            return events
        if len(events) == 1 and type(events[0]) is DeadLetter:
            return events
        out: list[Output] = []
        for event in events:
            sync = self.syncs.get(event.instrument)
            if sync is None:
                sync = self.syncs[event.instrument] = BookSync(event.instrument, raw.feed, FEEDS[raw.feed].rule())
            out.extend(sync.on_event(event, raw))
        return out
