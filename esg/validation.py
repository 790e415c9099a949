"""Check raw tables (every cell as read from a file) against their schema and type them.

A problem names the row (data rows counted from 1, the header not counted), the column and what is
wrong; every problem in the table is collected, so one run of the loader lists them all.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from esg import schema
from esg.metrics import BY_NAME as METRICS

CARBON_INTENSITY_TOLERANCE = 0.01  # a given carbon_intensity may differ from the derived one by 1%
HOLDING_COLUMNS = ("holding", "company_id", "ticker")  # the first one present names the holdings
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}")
_INTEGER = re.compile(r"^-?\d+$")


@dataclass(frozen=True)
class Problem:
    row: int | None  # data row counted from 1; None for the table as a whole
    column: str | None
    message: str
    label: str = ""  # the row's identifier, if it has one, to help find it

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}" + (f" ({self.label})" if self.label else ""))
        if self.column is not None:
            where.append(f"column '{self.column}'")
        return (", ".join(where) + ": " if where else "") + self.message


class EsgDataError(ValueError):
    """A companies, holdings or headlines table that does not follow its schema."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = sorted(problems, key=lambda p: p.row or 0)
        shown = "; ".join(str(p) for p in self.problems[:10])
        more = f" (and {len(self.problems) - 10} more)" if len(self.problems) > 10 else ""
        super().__init__(f"{source}: {shown}{more}")


def _cell_text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return str(value).strip()


def number_problem(column: schema.Column, cell: str, value: float) -> str | None:
    """What is wrong with one numeric cell (``cell`` as written, ``value`` as parsed), or None."""
    if cell == "":
        return "is empty" if column.required else None
    if math.isnan(value):
        return f"{cell!r} is not a number"
    if math.isinf(value):
        return f"{cell!r} is not finite"
    if column.positive and value <= 0:
        return f"must be greater than 0, got {cell}"
    if column.minimum is not None and value < column.minimum:
        return f"must be at least {column.minimum:g}, got {cell}"
    if column.maximum is not None and value > column.maximum:
        return f"must be at most {column.maximum:g}, got {cell}"
    if column.kind == "count" and not value.is_integer():
        return f"must be a whole number, got {cell}"
    return None


class _Checker:
    """Collects the problems of one table; ``labels`` names each row for the messages."""

    def __init__(self, raw: pd.DataFrame, source: str, label_column: str | None) -> None:
        self.raw = raw.reset_index(drop=True)
        self.source = source
        self.problems: list[Problem] = []
        labels = self.raw[label_column].map(_cell_text) if label_column in self.raw else None
        self.labels = (
            [f"{label_column} '{t}'" if t else "" for t in labels] if labels is not None else [""] * len(self.raw)
        )

    def add(self, row: int | None, column: str | None, message: str) -> None:
        label = self.labels[row] if row is not None else ""
        self.problems.append(Problem(None if row is None else row + 1, column, message, label))

    def require_columns(self, names: list[str]) -> bool:
        missing = [name for name in names if name not in self.raw]
        for name in missing:
            self.add(None, name, f"missing column (columns found: {', '.join(map(str, self.raw.columns)) or 'none'})")
        return not missing

    def text(self, name: str, required: bool = True) -> pd.Series:
        if name not in self.raw:
            return pd.Series([""] * len(self.raw), dtype=object)
        values = self.raw[name].map(_cell_text)
        if required:
            for row in np.flatnonzero(values.to_numpy() == ""):
                self.add(int(row), name, "is empty")
        return values

    def numbers(self, column: schema.Column) -> pd.Series:
        """The column as floats; NaN where a cell is blank (allowed only if not required) or wrong."""
        raw = self.raw[column.name]
        text = raw.map(_cell_text)
        if is_numeric_dtype(raw) and not is_bool_dtype(raw):
            values = raw.astype(float)
        else:
            values = pd.to_numeric(text.where(text != ""), errors="coerce").astype(float)
        for row, (cell, value) in enumerate(zip(text, values, strict=True)):
            message = number_problem(column, cell, value)
            if message:
                self.add(row, column.name, message)
        return values.where(np.isfinite(values))

    def unique(self, name: str, values: pd.Series) -> None:
        first_row: dict[str, int] = {}
        for row, value in enumerate(values):
            key = value.casefold()
            if key and key in first_row:
                self.add(row, name, f"{value!r} already appears in row {first_row[key] + 1}")
            first_row.setdefault(key, row)

    def raise_if_any(self) -> None:
        if self.problems:
            raise EsgDataError(self.source, self.problems)


def validate_companies(raw: pd.DataFrame, source: str = "companies") -> pd.DataFrame:
    """Typed company records indexed by ``company_id``, in schema order; columns not in the schema are dropped.

    ``carbon_intensity`` is not kept: it is always derived from the emissions and revenue.
    """
    check = _Checker(raw, source, "company_id")
    if not check.require_columns([c.name for c in schema.COLUMNS if c.required]):
        check.raise_if_any()
    typed: dict[str, pd.Series] = {}
    for column in schema.COLUMNS:
        if column.kind == "text":
            typed[column.name] = check.text(column.name, column.required)
        elif column.name in check.raw:
            typed[column.name] = check.numbers(column)
    for name in schema.UNIQUE:
        check.unique(name, typed[name])
    frame = pd.DataFrame(typed)
    if "carbon_intensity" in frame:
        given = frame.pop("carbon_intensity")
        derived = METRICS["carbon_intensity"].values(frame)
        off = given.notna() & derived.notna() & ((given - derived).abs() > CARBON_INTENSITY_TOLERANCE * derived.abs())
        for row in np.flatnonzero(off.to_numpy()):
            check.add(
                int(row),
                "carbon_intensity",
                f"{given.iloc[row]:g} disagrees with (scope1 + scope2) / revenue = {derived.iloc[row]:g}",
            )
    check.raise_if_any()
    frame["controversies"] = frame["controversies"].astype("int64")
    return frame.set_index("company_id")


def validate_holdings(raw: pd.DataFrame, source: str = "holdings") -> pd.DataFrame:
    """Holdings as two columns, ``holding`` (a company id or ticker) and ``weight`` (not yet normalised)."""
    id_column = next((c for c in HOLDING_COLUMNS if c in raw), "holding")
    check = _Checker(raw, source, id_column)
    if not check.require_columns([id_column, "weight"]):
        check.raise_if_any()
    holdings = check.text(id_column)
    weights = check.numbers(schema.Column("weight", "number", "Weight", "Portfolio weight.", minimum=0.0))
    check.unique(id_column, holdings)
    if not check.problems and weights.sum() <= 0:
        check.add(None, "weight", "the weights sum to zero; at least one holding needs a positive weight")
    check.raise_if_any()
    return pd.DataFrame({"holding": holdings, "weight": weights})


def parse_time_ns(cell: str) -> int | None:
    """Nanoseconds since the Unix epoch from an integer (already ns) or an ISO 8601 time (naive means UTC)."""
    if _INTEGER.match(cell):
        return int(cell)
    if not _ISO_TIME.match(cell):
        return None
    try:
        stamp = pd.Timestamp(cell)
    except ValueError:
        return None
    if pd.isna(stamp):
        return None
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).value


def validate_headlines(raw: pd.DataFrame, source: str = "headlines") -> pd.DataFrame:
    """Headlines as ``timestamp_ns`` (int), ``headline`` and ``source`` (may be blank)."""
    check = _Checker(raw, source, None)
    if not check.require_columns(["timestamp", "headline"]):
        check.raise_if_any()
    stamps = check.text("timestamp")
    times: list[int] = []
    for row, cell in enumerate(stamps):
        parsed = parse_time_ns(cell) if cell else None
        if cell and parsed is None:
            check.add(row, "timestamp", f"{cell!r} is neither an ISO 8601 time nor integer nanoseconds since 1970")
        times.append(parsed or 0)
    headlines = check.text("headline")
    sources = check.text("source", required=False)
    check.raise_if_any()
    return pd.DataFrame({"timestamp_ns": pd.Series(times, dtype="int64"), "headline": headlines, "source": sources})
