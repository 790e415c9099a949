"""One company's scorecard: pillar scores, the metrics behind them, its rating and its rank in the sector."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from esg.metrics import METRICS, PILLARS
from esg.scoring import Benchmark
from esg.weights import Weights


@dataclass(frozen=True, eq=False)
class Scorecard:
    company_id: str
    name: str
    ticker: str
    sector: str
    pillars: dict[str, float]
    overall: float
    rating: str
    sector_rank: int
    sector_size: int
    metrics: pd.DataFrame  # one row per metric: pillar, label, unit, value, sector_mean, better, score, weight


def scorecard(scored: pd.DataFrame, bench: Benchmark, weights: Weights, company_id: str) -> Scorecard:
    if company_id not in scored.index:
        raise KeyError(f"no company with id {company_id!r}")
    row = scored.loc[company_id]
    metrics = pd.DataFrame(
        [
            {
                "metric": m.name,
                "pillar": m.pillar,
                "label": m.label,
                "unit": m.unit,
                "value": row[m.name],
                "sector_mean": bench.mean.at[row["sector"], m.name],
                "better": "higher" if m.higher_is_better else "lower",
                "score": row[f"{m.name}_score"],
                "weight": weights.metrics[m.name],
            }
            for m in METRICS
        ]
    ).set_index("metric")
    return Scorecard(
        company_id=company_id,
        name=row["name"],
        ticker=row["ticker"],
        sector=row["sector"],
        pillars={p: float(row[p]) for p in PILLARS},
        overall=float(row["overall"]),
        rating=row["rating"],
        sector_rank=int(row["sector_rank"]),
        sector_size=int(row["sector_size"]),
        metrics=metrics,
    )
