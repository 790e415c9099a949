"""The ESG dashboard's portfolio views: the holdings editor, the portfolio analysis and the news alerts."""

from __future__ import annotations

from html import escape
from pathlib import Path

import pandas as pd
import panel as pn

from dashboards.esg_html import badge, error, stat, stats_row, table
from dashboards.esg_plots import drag_chart, sector_weight_chart, sentiment_chart
from esg import Universe
from esg.alert_store import AlertStore
from esg.loader import HeadlineFile, load_holdings
from esg.portfolio import resolve
from esg.sentiment import DEFAULT_ALERT_THRESHOLD, CompanyMatcher, ScoredHeadline, raise_alerts, score_headlines
from esg.validation import EsgDataError, validate_holdings


def holdings_editor(initial: pd.DataFrame) -> tuple[pn.Column, pn.widgets.Tabulator]:
    """An editable holdings table with upload, add-row and remove-selected; returns the layout and the table."""
    holdings = pn.widgets.Tabulator(
        initial.reset_index(drop=True),
        editors={"holding": {"type": "input"}, "weight": {"type": "number", "min": 0}},
        show_index=False,
        selectable="checkbox",
        layout="fit_columns",
        height=420,
        width=320,
    )
    upload = pn.widgets.FileInput(accept=".csv,.parquet", name="Upload holdings")
    message = pn.pane.Alert("", alert_type="danger", visible=False)

    def on_upload(_: object) -> None:
        try:
            holdings.value = load_holdings(upload.filename or "upload.csv", upload.value)
        except EsgDataError as problem:
            message.object, message.visible = escape(str(problem)), True
        else:
            message.visible = False

    def add_row(_: object) -> None:
        holdings.value = pd.concat(
            [holdings.value, pd.DataFrame({"holding": [""], "weight": [0.0]})], ignore_index=True
        )

    def remove_selected(_: object) -> None:
        holdings.value = holdings.value.drop(holdings.value.index[holdings.selection]).reset_index(drop=True)
        holdings.selection = []

    upload.param.watch(on_upload, "value")
    add, remove = pn.widgets.Button(name="Add row"), pn.widgets.Button(name="Remove selected")
    add.on_click(add_row)
    remove.on_click(remove_selected)
    layout = pn.Column(
        pn.pane.Markdown("#### Holdings\nUpload a CSV (`holding` = company id or ticker, `weight`), or edit below."),
        upload,
        message,
        holdings,
        pn.Row(add, remove),
        width=340,
    )
    return layout, holdings


def _valid_holdings(frame: pd.DataFrame) -> pd.DataFrame:
    """The edited table as holdings; rows left with no holding (a fresh added row) are ignored."""
    named = frame[frame["holding"].fillna("").astype(str).str.strip() != ""]
    return validate_holdings(named, "holdings table")


def portfolio_view(universe: Universe, holdings: pn.widgets.Tabulator) -> pn.viewable.Viewable:
    def render(frame: pd.DataFrame) -> pn.viewable.Viewable:
        try:
            analysis = universe.portfolio(_valid_holdings(frame))
        except EsgDataError as problem:
            return error(str(problem))
        if analysis.rating is None:
            return error("None of the holdings has an ESG record (match by company id or ticker).")
        detail = analysis.holdings.assign(weight=analysis.holdings["weight"] * 100)[
            [
                "holding",
                "name",
                "sector",
                "weight",
                "overall",
                "rating",
                "carbon_intensity",
                "score_contribution",
                "drag",
            ]
        ].rename(
            columns={"weight": "weight %", "carbon_intensity": "carbon intensity", "score_contribution": "contribution"}
        )
        draggers = ", ".join(f"{escape(r['name'])} ({r['drag']:+.2f})" for _, r in analysis.draggers().iterrows())
        uncovered = analysis.holdings[~analysis.holdings["covered"]]
        missing = ", ".join(
            f"{escape(h)} ({w:.1%})" for h, w in zip(uncovered["holding"], uncovered["weight"], strict=True)
        )
        return pn.Column(
            stats_row(
                stat("Weighted ESG score", f"{analysis.scores['overall']:.2f}", "portfolio-score"),
                stat("Portfolio rating", badge(analysis.rating, "portfolio-rating")),
                *(stat(f"{p} pillar", f"{analysis.scores[p]:.2f}") for p in ("E", "S", "G")),
                stat("Carbon intensity (WACI)", f"{analysis.carbon_intensity:,.1f}<small> tCO2e/USD m</small>"),
                stat("Coverage", f"{analysis.coverage:.1%}", "portfolio-coverage"),
            ),
            pn.pane.Markdown(
                f"**Dragging the score down most:** {draggers or 'none'}  \n"
                f"**No ESG record:** {missing or 'none'} (scores are over the covered holdings, reweighted)"
            ),
            pn.Row(
                pn.pane.HoloViews(drag_chart(analysis), sizing_mode="stretch_width"),
                pn.pane.HoloViews(sector_weight_chart(analysis), sizing_mode="stretch_width"),
            ),
            table(detail, layout="fit_columns"),
            sizing_mode="stretch_width",
        )

    return pn.bind(render, holdings.param.value)


def _headline_frame(scored: list[ScoredHeadline], held: set[str], names: dict[str, str], threshold: float):
    def kind(s: ScoredHeadline) -> str:
        if any(cid in held for cid in s.company_ids):
            return "alert" if s.compound <= threshold else "holding"
        return "other company" if s.company_ids else "no company"

    return pd.DataFrame(
        {
            "time": pd.to_datetime([s.headline.timestamp_ns for s in scored], utc=True).tz_localize(None),
            "compound": [s.compound for s in scored],
            "companies": [", ".join(names[c] for c in s.company_ids) for s in scored],
            "headline": [s.headline.headline for s in scored],
            "source": [s.headline.source for s in scored],
            "kind": [kind(s) for s in scored],
        }
    )


def _alert_frame(alerts: list) -> pd.DataFrame:
    frame = pd.DataFrame(
        [vars(a) for a in alerts], columns=["timestamp_ns", "company_name", "compound", "headline", "source"]
    )
    frame.insert(0, "time (UTC)", pd.to_datetime(frame.pop("timestamp_ns"), utc=True).dt.strftime("%Y-%m-%d %H:%M"))
    return frame.rename(columns={"company_name": "company"})


def alerts_view(universe: Universe, headlines_path: Path, db: Path | None, holdings: pn.widgets.Tabulator):
    matcher = CompanyMatcher(universe.companies)
    names = universe.companies["name"].to_dict()
    threshold = pn.widgets.FloatInput(
        name="Alert when VADER compound ≤", value=DEFAULT_ALERT_THRESHOLD, start=-1.0, end=0.0, step=0.05, width=220
    )
    reread = pn.widgets.Button(name="Re-read headlines", button_type="primary", width=180, align="end")
    scans: dict[int, list[ScoredHeadline]] = {}

    def scan(clicks: int) -> list[ScoredHeadline]:
        if clicks not in scans:  # the file is read again only when asked
            scans.clear()
            scans[clicks] = score_headlines(HeadlineFile(headlines_path), matcher)
        return scans[clicks]

    def render(clicks: int, limit: float | None, frame: pd.DataFrame) -> pn.viewable.Viewable:
        try:
            scored = scan(clicks)
            held = set(resolve(_valid_holdings(frame)["holding"], universe.scored).dropna())
        except EsgDataError as problem:
            return error(str(problem))
        limit = DEFAULT_ALERT_THRESHOLD if limit is None else limit
        alerts = raise_alerts(scored, held, names, limit)
        with AlertStore(db) as store:
            store.save(alerts)
            stored, where = store.recent(100), store.path
        headlines = _headline_frame(scored, held, names, limit)
        return pn.Column(
            stats_row(
                stat("Alerts on holdings", str(len(alerts)), "alert-count"),
                stat("Headlines read", str(len(scored))),
                stat("Naming a company", str(sum(bool(s.company_ids) for s in scored))),
            ),
            table(_alert_frame(alerts)) if alerts else pn.pane.Markdown("No strongly negative news about a holding."),
            pn.pane.HoloViews(sentiment_chart(headlines, limit), sizing_mode="stretch_width"),
            pn.pane.Markdown("#### Every headline"),
            table(headlines.assign(time=headlines["time"].dt.strftime("%Y-%m-%d %H:%M")), height=300),
            pn.pane.Markdown(f"#### Stored alerts (newest first), in `{escape(str(where))}`"),
            table(_alert_frame(stored), height=240),
            sizing_mode="stretch_width",
        )

    return pn.Column(
        pn.pane.Markdown(
            f"Headlines from `{escape(str(headlines_path))}`, scored by VADER, tied to companies by name or ticker. "
            "Strongly negative news about a holding of the **Portfolio** tab raises an alert, which is stored."
        ),
        pn.Row(threshold, reread),
        pn.bind(render, reread.param.clicks, threshold, holdings.param.value),
        sizing_mode="stretch_width",
    )
