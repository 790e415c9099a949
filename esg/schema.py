"""The columns of a companies file: name, kind, unit, meaning and the range a value must lie in.

This is the one definition of the input schema; validation, the what-if levers and the app read it here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "text", "number" (a finite real) or "count" (a whole number)
    label: str
    description: str
    unit: str = ""
    required: bool = True
    minimum: float | None = None
    maximum: float | None = None
    positive: bool = False  # strictly greater than zero (a divisor)

    def __post_init__(self) -> None:
        if self.kind not in ("text", "number", "count"):
            raise ValueError(f"column {self.name}: unknown kind {self.kind!r}")


def _amount(name: str, label: str, description: str, unit: str, positive: bool = False) -> Column:
    return Column(name, "number", label, description, unit, minimum=0.0, positive=positive)


def _percent(name: str, label: str, description: str) -> Column:
    return Column(name, "number", label, description, "%", minimum=0.0, maximum=100.0)


COLUMNS: tuple[Column, ...] = (
    Column("company_id", "text", "Id", "Identifier of the record, unique in the file."),
    Column("name", "text", "Name", "Company name, unique in the file (headlines are matched on it)."),
    Column("ticker", "text", "Ticker", "Exchange ticker, unique in the file (headlines are matched on it)."),
    Column("sector", "text", "Sector", "Scores are normalised among the companies of the same sector."),
    _amount("revenue_musd", "Revenue", "Annual revenue, the divisor of every intensity.", "USD m", positive=True),
    _amount("scope1_tco2e", "Scope 1 emissions", "Direct greenhouse-gas emissions (GHG Protocol scope 1).", "tCO2e"),
    _amount("scope2_tco2e", "Scope 2 emissions", "Indirect emissions from purchased energy (scope 2).", "tCO2e"),
    Column(
        "carbon_intensity",
        "number",
        "Carbon intensity",
        "Optional: (scope 1 + scope 2) / revenue. Always derived; if the file gives it, it must agree within 1%.",
        "tCO2e / USD m",
        required=False,
        minimum=0.0,
    ),
    _amount("energy_use_mwh", "Energy use", "Total energy consumed.", "MWh"),
    _percent("renewable_energy_pct", "Renewable energy", "Share of the energy consumed that is renewable."),
    _amount("water_use_m3", "Water use", "Water withdrawn.", "m3"),
    _amount(
        "lost_time_injury_rate", "Lost-time injury rate", "Lost-time injuries per million hours worked.", "per m h"
    ),
    _percent("employee_turnover_pct", "Employee turnover", "Employees who left in the year, share of headcount."),
    _percent("women_in_management_pct", "Women in management", "Share of management positions held by women."),
    _amount("training_hours_per_employee", "Training", "Average training hours per employee per year.", "h / employee"),
    _percent("board_independence_pct", "Board independence", "Share of board members who are independent."),
    _amount("ceo_pay_ratio", "CEO pay ratio", "CEO total pay divided by the median employee's.", "x median"),
    Column(
        "controversies", "count", "Controversies", "Significant controversies in the last three years.", minimum=0.0
    ),
    Column(
        "data_source",
        "text",
        "Data source",
        "Optional: where the figures come from (the bundled sample says it is fictional).",
        required=False,
    ),
)

BY_NAME: dict[str, Column] = {column.name: column for column in COLUMNS}
UNIQUE: tuple[str, ...] = ("company_id", "name", "ticker")
