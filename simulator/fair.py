"""The latent fair price, on a fine time grid, and the reference each venue quotes around."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from simulator.config import MarketModel

STEP_S = 0.005
TICK = 0.01


class References(NamedTuple):
    """Reference prices in ticks on a grid of ``STEP_S`` starting at ``start_s`` (simulated seconds)."""

    start_s: float
    leader: list[float]
    follower: list[float]

    def at(self, t: float) -> tuple[float, float]:
        i = int((t - self.start_s) / STEP_S)
        return self.leader[i], self.follower[i]


def references(model: MarketModel, rng: np.random.Generator, start_s: float, end_s: float) -> References:
    """Fair price (the leader's reference) and its lagged copy (the follower's)."""
    lag = round(model.follower_lag_s / STEP_S)
    n = math.ceil((end_s - start_s) / STEP_S) + lag + 2
    volatile = _regimes(model, rng, n)
    jumps = rng.random(n) < np.where(volatile, model.volatile_jumps_per_s, model.calm_jumps_per_s) * STEP_S
    jump_sizes = model.jump_bps * 1e-4 * np.exp(model.jump_sigma * rng.standard_normal(n))
    jump_sizes *= np.where(volatile, model.volatile_jump_scale, 1.0) * rng.choice((-1.0, 1.0), n)
    log_price = np.cumsum(np.where(jumps, jump_sizes, 0.0))
    fair = model.price / TICK * np.exp(log_price - log_price[lag])
    follower = np.empty(n)
    follower[lag:] = fair[: n - lag]
    follower[:lag] = fair[0]
    return References(start_s - lag * STEP_S, fair.tolist(), follower.tolist())


def _regimes(model: MarketModel, rng: np.random.Generator, n: int) -> np.ndarray:
    """A two-state Markov chain on the grid, from alternating exponential durations."""
    states, lengths, total = [], [], 0
    state = bool(rng.random() < model.volatile_mean_s / (model.calm_mean_s + model.volatile_mean_s))
    while total < n:
        mean = model.volatile_mean_s if state else model.calm_mean_s
        length = max(1, round(rng.exponential(mean) / STEP_S))
        states.append(state)
        lengths.append(length)
        total += length
        state = not state
    return np.repeat(states, lengths)[:n]
