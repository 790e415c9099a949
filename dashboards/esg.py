"""The ESG dashboard: scorecards, what-if, portfolio analysis and news alerts (Panel, port 8502).

Start it with ``quantumflow dashboard esg`` or ``panel serve dashboards/esg.py``; the latter reads its
files from QF_ESG_COMPANIES, QF_ESG_HOLDINGS and QF_ESG_HEADLINES (default: the fictional sample) and
stores alerts where QF_ESG_DB says (default: esg_alerts.sqlite in the data folder).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import panel as pn

from dashboards.esg_portfolio import alerts_view, holdings_editor, portfolio_view
from dashboards.esg_views import companies_view, scorecard_view, whatif_view
from esg import Universe
from esg.loader import SAMPLE_COMPANIES, SAMPLE_HEADLINES, SAMPLE_HOLDINGS, load_companies, load_holdings

DEFAULT_PORT = 8502
ILLUSTRATIVE_NOTE = (
    "**Illustrative data.** The {what} shown are the FICTIONAL sample shipped with QuantumFlow "
    "(`esg/sample/`): invented names and figures, not data about any real company."
)


@dataclass(frozen=True)
class EsgSettings:
    companies: Path = SAMPLE_COMPANIES
    holdings: Path = SAMPLE_HOLDINGS
    headlines: Path = SAMPLE_HEADLINES
    alerts_db: Path | None = None  # None: $QF_ESG_DB or esg_alerts.sqlite in the data folder

    @classmethod
    def from_env(cls) -> EsgSettings:
        def path(name: str, default: Path) -> Path:
            return Path(os.environ[name]) if os.environ.get(name) else default

        return cls(
            path("QF_ESG_COMPANIES", SAMPLE_COMPANIES),
            path("QF_ESG_HOLDINGS", SAMPLE_HOLDINGS),
            path("QF_ESG_HEADLINES", SAMPLE_HEADLINES),
        )

    def sample_parts(self) -> list[str]:
        """Which of the files are the fictional sample."""
        pairs = (("companies", self.companies, SAMPLE_COMPANIES), ("holdings", self.holdings, SAMPLE_HOLDINGS))
        pairs += (("headlines", self.headlines, SAMPLE_HEADLINES),)
        return [what for what, path, sample in pairs if path.resolve() == sample.resolve()]


@lru_cache(maxsize=4)
def _universe(path: Path, modified_ns: int) -> Universe:
    return Universe.build(load_companies(path))


def load_universe(path: Path) -> Universe:
    """The scored companies of a file, computed once per version of the file and shared by all sessions."""
    try:
        modified_ns = path.stat().st_mtime_ns
    except OSError:
        modified_ns = -1  # reading it fails, and says why in the file's own error
    return _universe(path.resolve(), modified_ns)


def build_app(settings: EsgSettings) -> pn.template.BootstrapTemplate:
    pn.extension("tabulator", sizing_mode="stretch_width")
    universe = load_universe(settings.companies)
    editor, holdings = holdings_editor(load_holdings(settings.holdings))
    tabs = pn.Tabs(
        ("Scorecard", scorecard_view(universe)),
        ("What-if", whatif_view(universe)),
        ("Portfolio", pn.Row(editor, portfolio_view(universe, holdings))),
        ("Sentiment alerts", alerts_view(universe, settings.headlines, settings.alerts_db, holdings)),
        ("All companies", companies_view(universe)),
        dynamic=False,
    )
    sample = settings.sample_parts()
    what = " and ".join(sample)
    header = [pn.pane.Alert(ILLUSTRATIVE_NOTE.format(what=what), alert_type="warning")] if sample else []
    # Bootstrap rather than the Fast templates, which fetch a web font: the dashboard must work offline
    return pn.template.BootstrapTemplate(
        title="QuantumFlow ESG", main=[*header, tabs], header_background="#0b3d2e", collapsed_sidebar=True
    )


if __name__.startswith("bokeh"):  # run by `panel serve dashboards/esg.py`
    build_app(EsgSettings.from_env()).servable()
