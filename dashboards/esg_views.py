"""The ESG dashboard's company views: scorecard, what-if and the table of all companies."""

from __future__ import annotations

from html import escape

import pandas as pd
import panel as pn

from dashboards.esg_html import badge, error, stat, stats_row, table
from dashboards.esg_plots import pillar_chart, sector_chart, whatif_chart
from esg import Universe
from esg.validation import EsgDataError
from esg.whatif import LEVERS, Change

PERCENT, VALUE = "change by %", "set to a value"


def company_select(universe: Universe, name: str = "Company") -> pn.widgets.Select:
    """Companies grouped by sector, shown as 'Name (TICKER)'."""
    scored = universe.scored.sort_values(["sector", "name"])
    groups = {
        sector: {f"{row['name']} ({row['ticker']})": cid for cid, row in rows.iterrows()}
        for sector, rows in scored.groupby("sector")
    }
    return pn.widgets.Select(name=name, groups=groups, value=scored.index[0], width=360)


def scorecard_view(universe: Universe) -> pn.Column:
    select = company_select(universe)
    averages = universe.sector_averages()

    def render(company_id: str) -> pn.Column:
        card = universe.scorecard(company_id)
        metrics = card.metrics.reset_index(drop=True)[
            ["pillar", "label", "value", "unit", "sector_mean", "better", "score", "weight"]
        ].rename(columns={"label": "metric", "sector_mean": "sector mean", "weight": "weight in pillar"})
        source = universe.companies.at[company_id, "data_source"]
        return pn.Column(
            pn.pane.HTML(
                f'<h2 data-testid="scorecard-name">{escape(card.name)} '
                f'<small style="color:#57606a">{escape(card.ticker)} · {escape(card.sector)}</small></h2>'
            ),
            stats_row(
                stat("Rating", badge(card.rating, "scorecard-rating")),
                stat("Overall score", f"{card.overall:.2f}", "scorecard-overall"),
                *(stat(f"{p} pillar", f"{v:.2f}") for p, v in card.pillars.items()),
                stat("Rank in sector", f"{card.sector_rank} of {card.sector_size}", "scorecard-rank"),
            ),
            pn.Row(
                pn.pane.HoloViews(pillar_chart(card, averages.loc[card.sector]), sizing_mode="stretch_width"),
                pn.pane.HoloViews(sector_chart(universe.scored, card.sector, company_id), sizing_mode="stretch_width"),
            ),
            pn.pane.Markdown("#### The metrics behind the scores (score 5 = sector average; 0-10)"),
            table(metrics),
            pn.pane.Markdown(f"Data source: {escape(source)}" if source else ""),
            sizing_mode="stretch_width",
        )

    return pn.Column(select, pn.bind(render, select), sizing_mode="stretch_width")


def readable(value: float) -> str:
    """A figure with thousands separators and no more than two decimals: 1,477,300 or 63.1."""
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _current(universe: Universe, company_id: str, lever: str) -> float:
    return float(universe.companies.loc[company_id, list(LEVERS[lever].columns)].sum())


def whatif_view(universe: Universe) -> pn.Column:
    company = company_select(universe)
    lever = pn.widgets.Select(
        name="Figure to change", options={lv.label: lv.name for lv in LEVERS.values()}, value="emissions", width=260
    )
    mode = pn.widgets.RadioButtonGroup(options=[PERCENT, VALUE], value=PERCENT, button_type="primary", width=280)
    amount = pn.widgets.FloatInput(name="Amount", value=-10.0, width=160, css_classes=["whatif-amount"])

    def prefill(*_: object) -> None:
        # "set to" starts from the current figure; "change by %" from a 10% cut
        amount.value = _current(universe, company.value, lever.value) if mode.value == VALUE else -10.0

    def prefill_value(*_: object) -> None:
        if mode.value == VALUE:
            prefill()

    mode.param.watch(prefill, "value")
    company.param.watch(prefill_value, "value")
    lever.param.watch(prefill_value, "value")

    def current_figure(company_id: str, lever_name: str) -> pn.pane.Markdown:
        unit = LEVERS[lever_name].unit
        return pn.pane.Markdown(f"Now: **{readable(_current(universe, company_id, lever_name))}** {escape(unit)}")

    def render(company_id: str, lever_name: str, how: str, value: float | None) -> pn.viewable.Viewable:
        if value is None:
            return pn.pane.Markdown("Enter an amount.")
        try:
            change = Change(lever_name, percent=value) if how == PERCENT else Change(lever_name, value=value)
            result = universe.what_if(company_id, [change])
        except (EsgDataError, ValueError) as problem:
            return error(str(problem))
        before, after = result.before, result.after
        comparison = result.comparison().reset_index().rename(columns={"": "score"})
        comparison = comparison.map(lambda v: round(v, 3) if isinstance(v, float) else v)
        return pn.Column(
            pn.pane.HTML(f"<h3>{escape(before.name)}: {escape(change.describe())}</h3>"),
            stats_row(
                stat("Original rating", badge(before.rating, "original-rating")),
                stat("What-if rating", badge(after.rating, "whatif-rating")),
                stat("Overall score", f"{before.overall:.2f} → {after.overall:.2f}", "whatif-overall"),
                stat("Rank in sector", f"{before.sector_rank} → {after.sector_rank} of {after.sector_size}"),
            ),
            pn.Row(
                pn.Column(
                    table(comparison, layout="fit_columns"),
                    table(result.metric_changes().reset_index(drop=True), layout="fit_columns"),
                ),
                pn.pane.HoloViews(whatif_chart(result), sizing_mode="stretch_width"),
            ),
            pn.pane.Markdown(
                "The company is scored against its sector as loaded: its peers keep their figures and scores."
            ),
            sizing_mode="stretch_width",
        )

    return pn.Column(
        pn.Row(company, lever, pn.Column(mode, amount)),
        pn.bind(current_figure, company, lever),
        pn.bind(render, company, lever, mode, amount),
        sizing_mode="stretch_width",
    )


def companies_view(universe: Universe) -> pn.widgets.Tabulator:
    columns = ["name", "ticker", "sector", "E", "S", "G", "overall", "rating", "sector_rank", "carbon_intensity"]
    frame: pd.DataFrame = universe.scored[columns].sort_values("overall", ascending=False)
    return table(frame.reset_index(), header_filters=True, height=640)
