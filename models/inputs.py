"""What the models see: the flow's feature rows made comparable across time and instruments.

Prices are dropped (a model must not learn the level of BTC); the weighted mid enters as its
offset from the mid in bps. The micro-price is left out: it is a function of the L1 imbalance and
the spread, which the models read, through a table that may differ between training and serving.

Sizes differ in scale between instruments (BTC on spot, contracts of 100 USD on COIN-M, coins of
every price on Coinbase and Kraken), so every input measured in size (order flow, traded volume,
depth, book slope) is divided by the book's own unit of size at that event: the mean size of a
level, over the 10 best levels of both sides. It needs no state and no fit, so an instrument never
seen in training gets the same inputs as one that was, and a book with every size scaled by c gives
the same inputs (``*_per_depth`` names). The multi-level order flow since the previous model event
(``event_ofi_k_per_depth``, levels 1..10; Kolm, Turiel & Westray 2023 feed networks this) enters
beside the features' window sums. Sizes, variances, rates and durations are heavy tailed, so they
pass through asinh (a log that keeps the sign and 0). Then each input is standardized with the
training data's mean and deviation and clipped to ±8.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from quantumflow.features import FEATURE_INDEX, FEATURES, LEVELS

_LINEAR_UNITS = {"bps", "ratio in [-1, 1]"}
_SIZE_UNITS = {"size", "size/bps"}
_KEPT = [f for f in FEATURES if f.unit != "price"]
_OFFSETS = ("weighted_mid",)
SIZE_SUFFIX = "_per_depth"
EVENT_OFI_NAMES = tuple(f"event_ofi_{k}{SIZE_SUFFIX}" for k in range(1, LEVELS + 1))
INPUT_NAMES: tuple[str, ...] = (
    *(f.name + SIZE_SUFFIX if f.unit in _SIZE_UNITS else f.name for f in _KEPT),
    *(f"{name}_offset_bps" for name in _OFFSETS),
    *EVENT_OFI_NAMES,
)
_KEPT_INDEX = np.array([FEATURE_INDEX[f.name] for f in _KEPT])
_SIZES = np.array([f.unit in _SIZE_UNITS for f in _KEPT] + [False] * len(_OFFSETS) + [True] * LEVELS)
_ASINH = np.array([f.unit not in _LINEAR_UNITS for f in _KEPT] + [False] * len(_OFFSETS) + [True] * LEVELS)
_DEPTH = [FEATURE_INDEX[f"{side}_depth_{LEVELS}"] for side in ("bid", "ask")]
CLIP = 8.0

# The online learner's inputs: its cost grows with the square of their number, so it reads the
# signals the literature finds strongest (imbalance, order flow, trade flow, recent moves, volatility).
ONLINE_INPUT_NAMES = (
    "spread_bps",
    "depth_imbalance_1",
    "depth_imbalance_2",
    "depth_imbalance_5",
    "depth_imbalance_10",
    "ofi_1_per_depth",
    "ofi_1_10e_per_depth",
    "ofi_1_100e_per_depth",
    "ofi_1_1s_per_depth",
    "ofi_1_10s_per_depth",
    "trade_imbalance_1s",
    "signed_volume_10s_per_depth",
    "mid_return_10e",
    "mid_return_100e",
    "realized_variance_10s",
    "time_since_mid_change",
    "weighted_mid_offset_bps",
)
ONLINE_INPUT_INDEX = np.array([INPUT_NAMES.index(name) for name in ONLINE_INPUT_NAMES])


def depth_unit(features: np.ndarray) -> np.ndarray:
    """The book's unit of size at each row: the mean size of a level over the 10 best of both sides
    (NaN for an empty book)."""
    total = features[:, _DEPTH[0]] + features[:, _DEPTH[1]]
    return np.where(total > 0, total / (2 * LEVELS), np.nan)


def raw_inputs(features: np.ndarray, event_ofi: np.ndarray) -> np.ndarray:
    """(n, 63) feature rows and (n, LEVELS) order flow since the previous event -> (n,
    len(INPUT_NAMES)) inputs before standardization."""
    mid = features[:, FEATURE_INDEX["mid"]]
    unit = depth_unit(features)[:, None]
    offsets = [1e4 * (features[:, FEATURE_INDEX[name]] / mid - 1.0) for name in _OFFSETS]
    x = np.hstack([features[:, _KEPT_INDEX], np.column_stack(offsets), event_ofi])
    x[:, _SIZES] /= unit
    x[:, _ASINH] = np.arcsinh(x[:, _ASINH])
    return x


class Normalizer(NamedTuple):
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Normalizer:
        finite = np.where(np.isfinite(x), x, np.nan)
        mean = np.nan_to_num(np.nanmean(finite, axis=0))
        std = np.nan_to_num(np.nanstd(finite, axis=0))
        return cls(mean, np.where(std > 1e-12, std, 1.0))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = np.clip((x - self.mean) / self.std, -CLIP, CLIP)
        return np.nan_to_num(z, nan=0.0).astype(np.float32)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> Normalizer:
        return cls(np.asarray(data["mean"], dtype=float), np.asarray(data["std"], dtype=float))
