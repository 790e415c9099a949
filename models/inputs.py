"""What the models see: the flow's feature rows made comparable across time and instruments.

Prices are dropped (a model must not learn the level of BTC); the weighted mid enters as its
offset from the mid in bps. The micro-price is left out: it is a function of the L1 imbalance and
the spread, which the models read, through a table that may differ between training and serving.
Sizes, variances, rates and durations are heavy tailed, so they pass through asinh (a log that
keeps the sign and 0). Then each input is standardized with the training data's mean and
deviation and clipped to ±8.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from quantumflow.features import FEATURE_INDEX, FEATURES

_LINEAR_UNITS = {"bps", "ratio in [-1, 1]"}
_KEPT = [f for f in FEATURES if f.unit != "price"]
_OFFSETS = ("weighted_mid",)
INPUT_NAMES: tuple[str, ...] = (*(f.name for f in _KEPT), *(f"{name}_offset_bps" for name in _OFFSETS))
_KEPT_INDEX = np.array([FEATURE_INDEX[f.name] for f in _KEPT])
_ASINH = np.array([f.unit not in _LINEAR_UNITS for f in _KEPT] + [False] * len(_OFFSETS))
CLIP = 8.0

# The online learner's inputs: its cost grows with the square of their number, so it reads the
# signals the literature finds strongest (imbalance, order flow, trade flow, recent moves, volatility).
ONLINE_INPUT_NAMES = (
    "spread_bps",
    "depth_imbalance_1",
    "depth_imbalance_2",
    "depth_imbalance_5",
    "depth_imbalance_10",
    "ofi_1",
    "ofi_1_10e",
    "ofi_1_100e",
    "ofi_1_1s",
    "ofi_1_10s",
    "trade_imbalance_1s",
    "signed_volume_10s",
    "mid_return_10e",
    "mid_return_100e",
    "realized_variance_10s",
    "time_since_mid_change",
    "weighted_mid_offset_bps",
)
ONLINE_INPUT_INDEX = np.array([INPUT_NAMES.index(name) for name in ONLINE_INPUT_NAMES])


def raw_inputs(features: np.ndarray) -> np.ndarray:
    """(n, 63) feature rows -> (n, len(INPUT_NAMES)) inputs before standardization."""
    mid = features[:, FEATURE_INDEX["mid"]]
    offsets = [1e4 * (features[:, FEATURE_INDEX[name]] / mid - 1.0) for name in _OFFSETS]
    x = np.hstack([features[:, _KEPT_INDEX], np.column_stack(offsets)])
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
