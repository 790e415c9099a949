"""Order latency: how long an order takes to reach the venue (and its fill report to come back).

The venue draws one latency per request and uses it both ways: the request reaches the venue at
``now + draw(now)``, and the engine tells the strategy of its fills that much after they happen.
"""

from __future__ import annotations

import random

DEFAULT_LATENCY_NS = 5_000_000  # 5 ms: a plain connection to a crypto venue, before the feed has shown any


class ConstantLatency:
    def __init__(self, ns: int = DEFAULT_LATENCY_NS) -> None:
        if ns < 0:
            raise ValueError(f"latency must be >= 0 ns, got {ns}")
        self.ns = int(ns)

    def observe(self, event) -> None:
        pass

    def draw(self, now: int) -> int:
        return self.ns

    def params(self) -> dict:
        return {"latency": "constant", "latency_ns": self.ns}


class FeedLatency:
    """Latencies drawn from the feed latency the recording has shown so far: ``receive_ts - exchange_ts``
    of the events observed up to now (never a later one: no look-ahead), kept in a uniform reservoir of
    ``reservoir`` samples (Vitter's algorithm R), less the smallest of them seen so far. The recorder's
    and the venue's clocks differ by an unknown offset (on the Binance recordings the recorder runs 1.27 s
    behind, so every raw difference is negative): the fastest message seen is taken as zero latency, so
    what is drawn is the feed's delay over its fastest, as hftbacktest's converter shifts its clock. Until
    an event with an exchange time has been seen, the latency is ``fallback_ns``. Seeded: the same
    recording gives the same draws."""

    def __init__(self, seed: int = 0, reservoir: int = 10_000, fallback_ns: int = DEFAULT_LATENCY_NS) -> None:
        if reservoir < 1:
            raise ValueError(f"the reservoir must hold at least 1 sample, got {reservoir}")
        self.seed = seed
        self.size = reservoir
        self.fallback_ns = int(fallback_ns)
        self.samples: list[int] = []
        self.fastest: int | None = None  # the smallest receive - exchange difference seen
        self.seen = 0
        self._rng = random.Random(seed)

    def observe(self, event) -> None:
        exchange_ts = getattr(event, "exchange_ts", None)
        if exchange_ts is None:
            return
        sample = event.receive_ts - exchange_ts
        if self.fastest is None or sample < self.fastest:
            self.fastest = sample
        self.seen += 1
        if len(self.samples) < self.size:
            self.samples.append(sample)
        else:
            slot = self._rng.randrange(self.seen)
            if slot < self.size:
                self.samples[slot] = sample

    def draw(self, now: int) -> int:
        if not self.samples:
            return self.fallback_ns
        return self.samples[self._rng.randrange(len(self.samples))] - self.fastest

    def params(self) -> dict:
        return {"latency": "feed", "seed": self.seed, "reservoir": self.size, "fallback_ns": self.fallback_ns}
