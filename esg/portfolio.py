"""Portfolio analysis: weighted ESG scores and carbon intensity, contributions, coverage, the laggards.

Weights are normalised to sum to 1. Holdings with no ESG record are uncovered; ``coverage`` is the
weight in covered holdings, and the portfolio's scores and weighted average carbon intensity (WACI)
are averages over the covered holdings with their weights rescaled to sum to 1 there. A holding's
contribution to a figure is its rescaled weight times its value, so contributions add up to the figure.
Its drag is rescaled weight x (its overall score - the portfolio's): negative when it pulls the score down.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from esg.metrics import PILLARS
from esg.rating import rating
from esg.validation import EsgDataError, Problem

SCORES = (*PILLARS, "overall")


def normalise(weights: pd.Series) -> pd.Series:
    """Weights scaled to sum to 1 (they must be non-negative with a positive sum)."""
    total = weights.sum()
    if (weights < 0).any() or not total > 0:
        raise ValueError("weights must be non-negative with a positive sum")
    return weights / total


def resolve(holdings: pd.Series, scored: pd.DataFrame) -> pd.Series:
    """The company id each holding names, by company id or ticker (case-insensitive); None when unknown."""
    lookup = {ticker.casefold(): cid for cid, ticker in scored["ticker"].items()}
    lookup.update({cid.casefold(): cid for cid in scored.index})
    return holdings.map(lambda h: lookup.get(h.casefold()))


@dataclass(frozen=True, eq=False)
class PortfolioAnalysis:
    holdings: pd.DataFrame  # per holding: weight, covered, name, sector, scores, carbon, contributions, drag
    by_sector: pd.DataFrame  # per sector: weight, score contribution, sector score, carbon contribution
    coverage: float
    scores: dict[str, float]  # E, S, G and overall over the covered holdings
    rating: str | None  # None when nothing is covered
    carbon_intensity: float  # weighted average carbon intensity (WACI) over the covered holdings

    @property
    def uncovered(self) -> list[str]:
        return self.holdings.loc[~self.holdings["covered"], "holding"].tolist()

    def draggers(self, count: int = 3) -> pd.DataFrame:
        """The holdings that pull the overall score down the most, worst first."""
        dragging = self.holdings[self.holdings["drag"] < 0]
        return dragging.sort_values("drag").head(count)


def analyse(holdings: pd.DataFrame, scored: pd.DataFrame) -> PortfolioAnalysis:
    """``holdings`` as validated (``holding``, ``weight``); ``scored`` as from ``scoring.score``."""
    frame = holdings.assign(weight=normalise(holdings["weight"]), company_id=resolve(holdings["holding"], scored))
    _reject_repeats(frame)
    frame["covered"] = frame["company_id"].notna()
    columns = ["name", "sector", *SCORES, "rating", "carbon_intensity"]
    frame = frame.join(scored[columns], on="company_id")
    coverage = float(frame.loc[frame["covered"], "weight"].sum())
    if coverage == 0:
        empty = frame.assign(score_contribution=float("nan"), carbon_contribution=float("nan"), drag=float("nan"))
        nan = float("nan")
        return PortfolioAnalysis(empty, pd.DataFrame(), 0.0, dict.fromkeys(SCORES, nan), None, nan)
    share = frame["weight"].where(frame["covered"], 0.0) / coverage  # weight rescaled over the covered
    scores = {name: float((share * frame[name]).sum()) for name in SCORES}
    frame["score_contribution"] = (share * frame["overall"]).where(frame["covered"])
    frame["carbon_contribution"] = (share * frame["carbon_intensity"]).where(frame["covered"])
    frame["drag"] = (share * (frame["overall"] - scores["overall"])).where(frame["covered"])
    by_sector = (
        frame[frame["covered"]]
        .groupby("sector")
        .agg(
            weight=("weight", "sum"),
            score_contribution=("score_contribution", "sum"),
            carbon_contribution=("carbon_contribution", "sum"),
        )
    )
    by_sector["score"] = by_sector["score_contribution"] / (by_sector["weight"] / coverage)
    return PortfolioAnalysis(
        holdings=frame,
        by_sector=by_sector.sort_values("weight", ascending=False),
        coverage=coverage,
        scores=scores,
        rating=rating(scores["overall"]),
        carbon_intensity=float(frame["carbon_contribution"].sum()),
    )


def _reject_repeats(frame: pd.DataFrame) -> None:
    """Two rows naming one company (say by id and by ticker) would double-count it."""
    seen: dict[str, int] = {}
    problems = []
    for row, company_id in enumerate(frame["company_id"]):
        if company_id is None:
            continue
        if company_id in seen:
            problems.append(Problem(row + 1, "holding", f"names company {company_id} again (row {seen[company_id]})"))
        seen.setdefault(company_id, row + 1)
    if problems:
        raise EsgDataError("holdings", problems)
