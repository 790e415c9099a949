"""Sector-relative scores: metric scores from z-scores within the sector, pillar and overall scores, ratings.

For each metric and sector, z = (value - sector mean) / sector standard deviation (population, ddof=0),
with the sign flipped where lower is better. The metric score is 5 + 2 z, clipped to [0, 10]: the sector
average scores 5 and a company 2.5 standard deviations better than it scores 10. Where a sector has no
spread in a metric (one company, or all equal) every company scores 5 on it. Pillar scores are the
weighted means of their metric scores, the overall score the weighted mean of the pillars (see weights.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from esg.metrics import METRICS, PILLARS, metric_values
from esg.rating import rating
from esg.weights import DEFAULT_WEIGHTS, Weights

CENTRE = 5.0
POINTS_PER_STD = 2.0
# a spread this small relative to the mean is rounding noise among equal values, not a real difference
_NO_SPREAD = 1e-12
_RANK_DECIMALS = 9  # scores equal to this many decimals share a rank


@dataclass(frozen=True, eq=False)
class Benchmark:
    """Mean and population standard deviation of each metric (columns) in each sector (rows)."""

    mean: pd.DataFrame
    std: pd.DataFrame


def benchmark(companies: pd.DataFrame) -> Benchmark:
    return _benchmark(metric_values(companies), companies["sector"])


def _benchmark(values: pd.DataFrame, sectors: pd.Series) -> Benchmark:
    grouped = values.groupby(sectors)
    return Benchmark(mean=grouped.mean(), std=grouped.std(ddof=0))


def metric_scores(values: pd.DataFrame, sectors: pd.Series, bench: Benchmark) -> pd.DataFrame:
    """0-10 score of every metric value (as from ``metric_values``) against its sector in ``bench``."""
    unknown = set(sectors) - set(bench.mean.index)
    if unknown:
        raise KeyError(f"no benchmark for sector(s) {sorted(unknown)}")
    mean = bench.mean.loc[sectors, values.columns].to_numpy()
    std = bench.std.loc[sectors, values.columns].to_numpy()
    flat = std <= _NO_SPREAD * (1.0 + np.abs(mean))
    z = np.where(flat, 0.0, (values.to_numpy() - mean) / np.where(flat, 1.0, std))
    direction = np.array([1.0 if m.higher_is_better else -1.0 for m in METRICS])
    return pd.DataFrame(np.clip(CENTRE + POINTS_PER_STD * z * direction, 0.0, 10.0), values.index, values.columns)


def score(companies: pd.DataFrame, weights: Weights = DEFAULT_WEIGHTS, bench: Benchmark | None = None) -> pd.DataFrame:
    """Every company's metrics, metric scores (``<metric>_score``), pillars E S G, overall, rating and sector rank.

    ``bench`` defaults to the companies' own sectors; pass the benchmark of other data to score these
    companies against it (a what-if scores a changed company against the sector as it was).
    """
    values = metric_values(companies)
    bench = bench if bench is not None else _benchmark(values, companies["sector"])
    scores = metric_scores(values, companies["sector"], bench)
    frame = companies[["name", "ticker", "sector"]].join(values).join(scores.add_suffix("_score"))
    for pillar in PILLARS:
        members = [m.name for m in METRICS if m.pillar == pillar]
        frame[pillar] = _weighted_sum(scores, {m: weights.metrics[m] for m in members})
    frame["overall"] = _weighted_sum(frame, weights.pillars)
    frame["rating"] = frame["overall"].map(rating)
    return with_sector_ranks(frame)


def _weighted_sum(frame: pd.DataFrame, weights: Mapping[str, float]) -> pd.Series:
    # column by column rather than a matrix product, whose rounding can differ between equal rows
    return sum(frame[name] * weight for name, weight in weights.items()).clip(0.0, 10.0)


def with_sector_ranks(frame: pd.DataFrame) -> pd.DataFrame:
    """Rank by overall score within each sector, 1 the best; equal scores share the better rank."""
    by_sector = frame["overall"].round(_RANK_DECIMALS).groupby(frame["sector"])
    return frame.assign(
        sector_rank=by_sector.rank(ascending=False, method="min").astype("int64"),
        sector_size=by_sector.transform("size").astype("int64"),
    )
