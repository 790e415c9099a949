"""Stoikov's micro-price: the mid adjusted by the expected mid far in the future, given the
current imbalance and spread (S. Stoikov, "The micro-price: a high frequency estimator of future
prices", Quantitative Finance 18(12), 2018).

The state is x = (imbalance bucket i, spread in ticks s), with I = qb_1 / (qb_1 + qa_1). From a
recording, estimated on data symmetrized by (I, dM) -> (1 - I, -dM):

* Q(x, y): probability the next event moves the state to y without changing the mid,
* T(x, y): probability it moves to y and changes the mid, R(x, k): the mid changes by k ticks,
* G1 = (1 - Q)^-1 R K, the expected mid change when the mid next changes, B = (1 - Q)^-1 T,
* G* = sum_{j >= 0} B^j G1, and micro-price = mid + G*(x) * tick.

The table is fitted per instrument and saved as JSON; states it does not cover (wider spreads)
use the weighted mid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MID_CHANGES_TICKS = np.array([-1.0, -0.5, 0.5, 1.0])  # Stoikov's K


@dataclass(frozen=True)
class MicroPriceTable:
    tick: float
    adjustment_ticks: np.ndarray  # (max spread in ticks, imbalance buckets): G*(i, s)
    observations: int = 0

    @property
    def imbalance_buckets(self) -> int:
        return self.adjustment_ticks.shape[1]

    def apply(
        self, mid: np.ndarray, spread: np.ndarray, bid_size: np.ndarray, ask_size: np.ndarray, fallback: np.ndarray
    ) -> np.ndarray:
        bucket, ticks = _state(spread, bid_size, ask_size, self.tick, self.imbalance_buckets)
        covered = (ticks >= 1) & (ticks <= self.adjustment_ticks.shape[0])
        adjustment = self.adjustment_ticks[np.clip(ticks - 1, 0, self.adjustment_ticks.shape[0] - 1), bucket]
        return np.where(covered, mid + adjustment * self.tick, fallback)

    def to_dict(self) -> dict:
        return {
            "tick": self.tick,
            "imbalance_buckets": self.imbalance_buckets,
            "adjustment_ticks": self.adjustment_ticks.tolist(),
            "observations": self.observations,
        }

    @classmethod
    def from_dict(cls, data: dict) -> MicroPriceTable:
        table = np.asarray(data["adjustment_ticks"], dtype=float)
        if table.ndim != 2 or not np.isfinite(table).all() or float(data["tick"]) <= 0:
            raise ValueError("a micro-price table needs a positive tick and a finite 2-D adjustment_ticks")
        return cls(float(data["tick"]), table, int(data.get("observations", 0)))


def fit_micro_price(
    mid: np.ndarray,
    spread: np.ndarray,
    bid_size: np.ndarray,
    ask_size: np.ndarray,
    tick: float,
    imbalance_buckets: int = 10,
    max_spread_ticks: int = 2,
) -> MicroPriceTable:
    """Estimate G* from one instrument's consecutive book states (arrays in event order)."""
    bucket, ticks = _state(spread, bid_size, ask_size, tick, imbalance_buckets)
    n_states = imbalance_buckets * max_spread_ticks
    state = (ticks - 1) * imbalance_buckets + bucket
    valid = (ticks >= 1) & (ticks <= max_spread_ticks)
    pair = valid[:-1] & valid[1:]
    here, there = state[:-1][pair], state[1:][pair]
    change = np.round(2 * (mid[1:] - mid[:-1])[pair] / tick) / 2  # in half ticks
    change = np.clip(change, -1.0, 1.0)
    # symmetrize: the mirrored book (I -> 1 - I) sees the opposite move
    mirror = _mirror(imbalance_buckets, max_spread_ticks)
    here, there, change = (
        np.concatenate([here, mirror[here]]),
        np.concatenate([there, mirror[there]]),
        np.concatenate([change, -change]),
    )
    counts = np.bincount(here, minlength=n_states).astype(float)
    seen = counts > 0
    moved = change != 0
    q = _transitions(here[~moved], there[~moved], n_states)
    t = _transitions(here[moved], there[moved], n_states)
    r = np.zeros((n_states, len(MID_CHANGES_TICKS)))
    k_index = np.searchsorted(MID_CHANGES_TICKS, change[moved])
    np.add.at(r, (here[moved], k_index), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        q, t, r = (np.where(seen[:, None], m / counts[:, None], 0.0) for m in (q, t, r))
    fundamental = np.linalg.pinv(np.eye(n_states) - q)
    g1 = fundamental @ r @ MID_CHANGES_TICKS
    b = fundamental @ t
    g, term = g1.copy(), g1
    for _ in range(1_000):
        term = b @ term
        g += term
        if np.abs(term).max() < 1e-12:
            break
    return MicroPriceTable(tick, g.reshape(max_spread_ticks, imbalance_buckets), int(pair.sum()))


def estimate_tick(prices: np.ndarray) -> float:
    """The smallest step between distinct ``prices`` (venue prices are decimals: steps are
    rounded to 9 decimal places, below which float noise lives)."""
    steps = np.round(np.diff(np.unique(prices[np.isfinite(prices)])), 9)
    steps = steps[steps > 0]
    if len(steps) == 0:
        raise ValueError("cannot estimate the tick: fewer than two distinct prices")
    return float(steps.min())


def _state(spread, bid_size, ask_size, tick, buckets) -> tuple[np.ndarray, np.ndarray]:
    total = bid_size + ask_size
    with np.errstate(invalid="ignore", divide="ignore"):
        imbalance = np.where(total > 0, bid_size / total, 0.5)
    bucket = np.minimum((imbalance * buckets).astype(np.int64), buckets - 1)
    ticks = np.rint(np.nan_to_num(spread / tick, nan=-1.0)).astype(np.int64)
    return bucket, ticks


def _mirror(buckets: int, spreads: int) -> np.ndarray:
    states = np.arange(buckets * spreads)
    return (states // buckets) * buckets + (buckets - 1 - states % buckets)


def _transitions(source: np.ndarray, target: np.ndarray, n: int) -> np.ndarray:
    counts = np.zeros((n, n))
    np.add.at(counts, (source, target), 1.0)
    return counts
