"""A scored universe of companies: the entry point the app and the CLI use."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from esg import portfolio, scoring, whatif
from esg.scorecard import Scorecard, scorecard
from esg.weights import DEFAULT_WEIGHTS, Weights


@dataclass(frozen=True, eq=False)
class Universe:
    companies: pd.DataFrame  # validated records, indexed by company_id
    weights: Weights
    benchmark: scoring.Benchmark
    scored: pd.DataFrame

    @classmethod
    def build(cls, companies: pd.DataFrame, weights: Weights = DEFAULT_WEIGHTS) -> Universe:
        bench = scoring.benchmark(companies)
        return cls(companies, weights, bench, scoring.score(companies, weights, bench))

    def scorecard(self, company_id: str) -> Scorecard:
        return scorecard(self.scored, self.benchmark, self.weights, company_id)

    def what_if(self, company_id: str, changes: list[whatif.Change]) -> whatif.WhatIf:
        changed = whatif.apply_changes(self.companies, company_id, changes)
        rescored = scoring.score(changed.loc[[company_id]], self.weights, self.benchmark)
        scored = self.scored.copy()
        scored.loc[company_id, rescored.columns] = rescored.loc[company_id]
        scored = scoring.with_sector_ranks(scored)
        after = scorecard(scored, self.benchmark, self.weights, company_id)
        return whatif.WhatIf(tuple(changes), self.scorecard(company_id), after)

    def portfolio(self, holdings: pd.DataFrame) -> portfolio.PortfolioAnalysis:
        return portfolio.analyse(holdings, self.scored)

    def sector_averages(self) -> pd.DataFrame:
        """Mean pillar and overall scores of each sector."""
        return self.scored.groupby("sector")[[*portfolio.SCORES]].mean()
