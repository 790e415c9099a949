"""What-if: change a company's raw figures and see its scores and rating beside the original.

The changed company is scored against its sector as loaded: the sector means and spreads are not
recomputed, so its peers keep their values and their scores and the change shows the company's own
improvement; only its rank among the peers can move. (Recomputing them would shift every peer a
little, because the changed company is part of its own sector's average.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from esg import schema
from esg.metrics import METRICS
from esg.scorecard import Scorecard
from esg.validation import EsgDataError, Problem, number_problem


@dataclass(frozen=True)
class Lever:
    name: str
    label: str
    columns: tuple[str, ...]  # raw columns the lever moves together, in proportion
    unit: str


def _levers() -> dict[str, Lever]:
    levers = [Lever("emissions", "Emissions, scopes 1+2", ("scope1_tco2e", "scope2_tco2e"), "tCO2e")]
    levers += [
        Lever(c.name, c.label, (c.name,), c.unit)
        for c in schema.COLUMNS
        if c.kind != "text" and c.name != "carbon_intensity"  # derived, moved through the emissions
    ]
    return {lever.name: lever for lever in levers}


LEVERS: dict[str, Lever] = _levers()


@dataclass(frozen=True)
class Change:
    """Move a lever by ``percent`` (-10 cuts it by a tenth) or set it to ``value`` (shared pro rata by its columns)."""

    lever: str
    percent: float | None = None
    value: float | None = None

    def __post_init__(self) -> None:
        if self.lever not in LEVERS:
            raise ValueError(f"unknown lever {self.lever!r}; levers: {', '.join(LEVERS)}")
        if (self.percent is None) == (self.value is None):
            raise ValueError("a change gives either a percent or a value")
        amount = self.percent if self.percent is not None else self.value
        if not math.isfinite(amount):
            raise ValueError(f"a change must be a finite number, got {amount}")

    def describe(self) -> str:
        lever = LEVERS[self.lever]
        return f"{lever.label} {self.percent:+g}%" if self.percent is not None else f"{lever.label} = {self.value:g}"


def apply_changes(companies: pd.DataFrame, company_id: str, changes: list[Change]) -> pd.DataFrame:
    """A copy of ``companies`` with the changes made to one company; counts are rounded to whole numbers."""
    if company_id not in companies.index:
        raise KeyError(f"no company with id {company_id!r}")
    changed = companies.copy()
    for change in changes:
        columns = list(LEVERS[change.lever].columns)
        current = changed.loc[company_id, columns].astype(float)
        if change.percent is not None:
            new = current * (1 + change.percent / 100)
        elif len(columns) == 1:
            new = pd.Series([change.value], index=columns, dtype=float)
        elif current.sum() > 0:
            new = current * (change.value / current.sum())
        else:
            raise EsgDataError("what-if", [Problem(None, columns[0], "is zero, so it cannot be shared out")])
        for name in columns:
            column = schema.BY_NAME[name]
            value = float(round(new[name])) if column.kind == "count" else float(new[name])
            problem = number_problem(column, f"{value:g}", value)
            if problem:
                raise EsgDataError("what-if", [Problem(None, name, problem, f"company_id '{company_id}'")])
            changed.loc[company_id, name] = value
    changed["controversies"] = changed["controversies"].astype("int64")
    return changed


@dataclass(frozen=True, eq=False)
class WhatIf:
    changes: tuple[Change, ...]
    before: Scorecard
    after: Scorecard

    @property
    def rating_changed(self) -> bool:
        return self.before.rating != self.after.rating

    def comparison(self) -> pd.DataFrame:
        """Pillars, overall, rating and sector rank: original, what-if and the change."""
        rows = []
        for pillar in self.before.pillars:
            before, after = self.before.pillars[pillar], self.after.pillars[pillar]
            rows.append((pillar, before, after, after - before))
        rows.append(("overall", self.before.overall, self.after.overall, self.after.overall - self.before.overall))
        rows.append(("rating", self.before.rating, self.after.rating, "changed" if self.rating_changed else ""))
        size = self.before.sector_size
        rank_move = self.before.sector_rank - self.after.sector_rank
        rows.append(
            (
                "sector rank",
                f"{self.before.sector_rank} of {size}",
                f"{self.after.sector_rank} of {size}",
                f"{rank_move:+d}" if rank_move else "",
            )
        )
        return pd.DataFrame(rows, columns=["", "original", "what-if", "change"]).set_index("")

    def metric_changes(self) -> pd.DataFrame:
        """The metrics whose value moved: value and score before and after."""
        before, after = self.before.metrics, self.after.metrics
        moved = [m.name for m in METRICS if before.at[m.name, "value"] != after.at[m.name, "value"]]
        return pd.DataFrame(
            {
                "label": before.loc[moved, "label"],
                "value": before.loc[moved, "value"],
                "what-if value": after.loc[moved, "value"],
                "score": before.loc[moved, "score"],
                "what-if score": after.loc[moved, "score"],
            }
        )
