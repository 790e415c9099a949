"""Random numbers for the per-event model, drawn from a NumPy Generator in blocks.

The model makes a handful of random decisions per order event, one at a time; a Python float
taken from a block is an order of magnitude cheaper than a call into the Generator. The blocks
are drawn in a fixed order, so a seed still fixes every number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

BLOCK = 1 << 15


def _blocks(draw: Callable[[int], np.ndarray]) -> Iterator[float]:
    while True:
        yield from draw(BLOCK).tolist()


class Draws:
    def __init__(self, rng: np.random.Generator) -> None:
        self.uniform: Callable[[], float] = _blocks(rng.random).__next__
        self.normal: Callable[[], float] = _blocks(rng.standard_normal).__next__
        self.exponential: Callable[[], float] = _blocks(rng.standard_exponential).__next__

    def lognormal(self, median: float, sigma: float) -> float:
        return median * math.exp(sigma * self.normal())
