"""What the two venues' feeds share during one run (the engine makes it, the feeds read it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.config import MarketModel
from simulator.faults import FaultPlan


@dataclass
class Session:
    """The run's start, output naming, the fault plan, checkpoint spacing."""

    model: MarketModel
    start_ns: int
    suffix: str
    faults: FaultPlan
    fault_rng: np.random.Generator
    first_ids: tuple[int, int, int]  # Binance update id, Binance trade id, Coinbase trade id
    checkpoint_ns: int
