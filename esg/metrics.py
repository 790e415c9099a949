"""The metrics that are scored: which pillar each belongs to, which direction is better, how it is computed.

Resource use is divided by revenue (an intensity) so that companies of different size compare fairly,
and a what-if on a raw figure (cut scope 1 emissions) flows into the metric it feeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from esg.schema import BY_NAME as COLUMNS

PILLARS: dict[str, str] = {"E": "Environmental", "S": "Social", "G": "Governance"}


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    pillar: str
    unit: str
    higher_is_better: bool
    sources: tuple[str, ...]  # raw columns summed to make the metric
    per: str | None = None  # raw column the sum is divided by

    def values(self, companies: pd.DataFrame) -> pd.Series:
        total = companies[list(self.sources)].sum(axis=1)
        values = total / companies[self.per] if self.per else total
        return values.astype(float).rename(self.name)


def _intensity(name: str, label: str, unit: str, *sources: str) -> Metric:
    return Metric(name, label, "E", unit, False, sources, "revenue_musd")


def _column(name: str, pillar: str, higher_is_better: bool) -> Metric:
    column = COLUMNS[name]
    return Metric(name, column.label, pillar, column.unit, higher_is_better, (name,))


METRICS: tuple[Metric, ...] = (
    _intensity("carbon_intensity", "Carbon intensity (scopes 1+2)", "tCO2e / USD m", "scope1_tco2e", "scope2_tco2e"),
    _intensity("energy_intensity", "Energy intensity", "MWh / USD m", "energy_use_mwh"),
    _intensity("water_intensity", "Water intensity", "m3 / USD m", "water_use_m3"),
    _column("renewable_energy_pct", "E", True),
    _column("lost_time_injury_rate", "S", False),
    _column("employee_turnover_pct", "S", False),
    _column("women_in_management_pct", "S", True),
    _column("training_hours_per_employee", "S", True),
    _column("board_independence_pct", "G", True),
    _column("controversies", "G", False),
    _column("ceo_pay_ratio", "G", False),
)

BY_NAME: dict[str, Metric] = {metric.name: metric for metric in METRICS}


def metric_values(companies: pd.DataFrame) -> pd.DataFrame:
    """Every metric of every company, one column per metric, indexed like ``companies``."""
    return pd.concat([metric.values(companies) for metric in METRICS], axis=1)
