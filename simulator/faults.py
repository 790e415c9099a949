"""Which faults to inject, and when: a lost Binance diff, a lost Coinbase level2 message, and
truncated lines (malformed JSON) on the Binance and Coinbase trades connections.

Each fault fires on the first eligible message sent at or after its planned time. Planned times
are spread over the middle of the run, one per equal segment, so that each fault is detected
and recovered from before the next one on the same connection.
"""

from __future__ import annotations

from collections import deque

import numpy as np

DROP_EVERY_S = 300.0
MALFORMED_EVERY_S = 200.0


class FaultPlan:
    def __init__(self, rng: np.random.Generator | None, duration_s: float) -> None:
        """No faults without ``rng``; else planned times, in ns after the start, of each kind."""
        self.injected: list[dict] = []  # what the manifest reports, filled in as faults fire
        drops = max(1, round(duration_s / DROP_EVERY_S)) if rng is not None else 0
        malformed = max(2, round(duration_s / MALFORMED_EVERY_S)) if rng is not None else 0
        self.drop_binance = _times(rng, duration_s, drops)
        self.drop_coinbase = _times(rng, duration_s, drops)
        times = _times(rng, duration_s, malformed)
        self.malformed_binance = deque(t for i, t in enumerate(times) if i % 2 == 0)
        self.malformed_trades = deque(t for i, t in enumerate(times) if i % 2 == 1)

    @staticmethod
    def due(planned: deque, now_ns: int) -> bool:
        """True (and the plan consumed) when the next planned fault of ``planned`` is due."""
        if planned and now_ns >= planned[0]:
            planned.popleft()
            return True
        return False

    def record(self, kind: str, file: str, receive_ns: int, **detail) -> dict:
        fault = {"kind": kind, "file": file, "receive_ns": receive_ns, **detail}
        self.injected.append(fault)
        return fault


def _times(rng: np.random.Generator | None, duration_s: float, count: int) -> deque:
    """Planned times in ns after the start: one in the middle half of each of ``count`` equal
    segments of the run's 15%..85%."""
    if not count:
        return deque()
    low, high = 0.15 * duration_s, 0.85 * duration_s
    segment = (high - low) / count
    offsets = rng.uniform(0.25, 0.75, count)
    return deque(int((low + (i + offsets[i]) * segment) * 1e9) for i in range(count))


def truncate(payload: bytes, rng: np.random.Generator) -> bytes:
    """A line cut short, as a recorder killed mid-write leaves it: never valid JSON."""
    return payload[: int(len(payload) * rng.uniform(0.3, 0.8))]
