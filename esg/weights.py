"""The weights: the one place that says how much each metric counts in its pillar and each pillar overall.

Defaults (also in docs/esg.md): E 40%, S 30%, G 30%. Within E, carbon intensity counts most because
it is the most decision-relevant figure for climate risk; within G, board independence and
controversies count equally and the CEO pay ratio half as much. Pass another ``Weights`` to score with
a different view; it is checked to cover every metric and to sum to 1 within each pillar and overall.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from esg.metrics import METRICS, PILLARS


@dataclass(frozen=True)
class Weights:
    pillars: Mapping[str, float]
    metrics: Mapping[str, float]  # weight of each metric within its own pillar

    def __post_init__(self) -> None:
        if set(self.pillars) != set(PILLARS):
            raise ValueError(f"pillar weights must name exactly {sorted(PILLARS)}, got {sorted(self.pillars)}")
        if set(self.metrics) != {m.name for m in METRICS}:
            raise ValueError(f"metric weights must name exactly the metrics {[m.name for m in METRICS]}")
        if any(w < 0 for w in [*self.pillars.values(), *self.metrics.values()]):
            raise ValueError("weights must not be negative")
        if not math.isclose(sum(self.pillars.values()), 1.0):
            raise ValueError(f"pillar weights must sum to 1, they sum to {sum(self.pillars.values())}")
        for pillar in PILLARS:
            total = sum(self.metrics[m.name] for m in METRICS if m.pillar == pillar)
            if not math.isclose(total, 1.0):
                raise ValueError(f"metric weights in pillar {pillar} must sum to 1, they sum to {total}")


DEFAULT_WEIGHTS = Weights(
    pillars={"E": 0.4, "S": 0.3, "G": 0.3},
    metrics={
        "carbon_intensity": 0.4,
        "energy_intensity": 0.2,
        "water_intensity": 0.2,
        "renewable_energy_pct": 0.2,
        "lost_time_injury_rate": 0.3,
        "employee_turnover_pct": 0.2,
        "women_in_management_pct": 0.25,
        "training_hours_per_employee": 0.25,
        "board_independence_pct": 0.4,
        "controversies": 0.4,
        "ceo_pay_ratio": 0.2,
    },
)
