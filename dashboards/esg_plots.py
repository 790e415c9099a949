"""The ESG dashboard's charts (hvplot): each takes plain data and returns a HoloViews object."""

from __future__ import annotations

import holoviews as hv
import hvplot.pandas  # noqa: F401  (registers DataFrame.hvplot)
import pandas as pd

from esg.portfolio import PortfolioAnalysis
from esg.scorecard import Scorecard
from esg.whatif import WhatIf

# leaders green, average amber, laggards red, as ESG ratings are commonly read
RATING_COLOURS = {
    "AAA": "#1a7f37",
    "AA": "#2da44e",
    "A": "#9bbb3b",
    "BBB": "#d4a72c",
    "BB": "#e16f24",
    "B": "#cf222e",
    "CCC": "#8c1d18",
}
PAIR = ["#8c959f", "#0969da"]  # reference (sector average, original) then the company or the what-if
SCORE_AXIS = {"ylim": (0, 10), "ylabel": "score (0-10)"}


def _grouped(rows: list[tuple[str, str, float]], title: str) -> hv.Bars:
    """Bars grouped by pillar, one colour per series, labelled by a legend rather than under each bar."""
    frame = pd.DataFrame(rows, columns=["pillar", "series", "score"])
    series = list(dict.fromkeys(frame["series"]))
    return hv.Bars(frame, kdims=["pillar", "series"], vdims="score").opts(
        color="series",
        cmap=dict(zip(series, PAIR, strict=True)),
        multi_level=False,
        show_legend=True,
        legend_position="top_left",
        title=title,
        height=300,
        responsive=True,
        xlabel="",
        shared_axes=False,
        **SCORE_AXIS,
    )


def pillar_chart(card: Scorecard, sector_average: pd.Series) -> hv.Element:
    """The company's pillar and overall scores beside its sector's averages."""
    scores = {**card.pillars, "overall": card.overall}
    rows = [(p, f"{card.sector} average", float(sector_average[p])) for p in scores]
    rows += [(p, card.name, value) for p, value in scores.items()]
    return _grouped(rows, "Scores against the sector average")


def sector_chart(scored: pd.DataFrame, sector: str, company_id: str) -> hv.Element:
    """Overall scores of the sector's companies, coloured by rating; the selected one is marked."""
    peers = scored[scored["sector"] == sector].sort_values("overall")
    frame = pd.DataFrame(
        {
            "company": [f"▶ {n}" if cid == company_id else n for cid, n in peers["name"].items()],
            "overall": peers["overall"],
            "rating": peers["rating"],
            "colour": peers["rating"].map(RATING_COLOURS),
        }
    )
    return frame.hvplot.barh(
        x="company",
        y="overall",
        color="colour",
        hover_cols=["rating"],
        title=f"{sector}: overall score and rating",
        height=300,
        shared_axes=False,
        **SCORE_AXIS,
    )


def whatif_chart(result: WhatIf) -> hv.Element:
    before = {**result.before.pillars, "overall": result.before.overall}
    after = {**result.after.pillars, "overall": result.after.overall}
    rows = [(p, f"original ({result.before.rating})", v) for p, v in before.items()]
    rows += [(p, f"what-if ({result.after.rating})", v) for p, v in after.items()]
    return _grouped(rows, "Original and what-if")


def drag_chart(analysis: PortfolioAnalysis) -> hv.Element:
    """Each covered holding's pull on the portfolio's overall score (negative drags it down)."""
    covered = analysis.holdings[analysis.holdings["covered"]].sort_values("drag")
    frame = pd.DataFrame(
        {
            "holding": covered["name"] + " (" + covered["holding"] + ")",
            "drag": covered["drag"],
            "weight": covered["weight"],
            "overall": covered["overall"],
            "colour": covered["drag"].map(lambda d: RATING_COLOURS["B"] if d < 0 else RATING_COLOURS["AA"]),
        }
    )
    return frame.hvplot.barh(
        x="holding",
        y="drag",
        color="colour",
        hover_cols=["weight", "overall"],
        title="Pull of each holding on the portfolio score",
        xlabel="",
        ylabel="weight x (score - portfolio score)",
        height=max(250, 28 * len(frame)),
        shared_axes=False,
    )


def sector_weight_chart(analysis: PortfolioAnalysis) -> hv.Element:
    frame = analysis.by_sector.reset_index()
    frame["weight %"] = frame["weight"] * 100
    return frame.hvplot.bar(
        x="sector",
        y="weight %",
        hover_cols=["score", "carbon_contribution"],
        color="#0969da",
        title="Weight by sector (hover: weighted score, carbon)",
        rot=20,
        height=300,
        shared_axes=False,
    )


KIND_COLOURS = {"alert": "#cf222e", "holding": "#0969da", "other company": "#8c959f", "no company": "#d0d7de"}


def sentiment_chart(headlines: pd.DataFrame, threshold: float) -> hv.Overlay:
    """Compound sentiment of each headline over time, by kind; the dashed line is the alert threshold."""
    layers = [
        headlines[headlines["kind"] == kind].hvplot.scatter(
            x="time",
            y="compound",
            hover_cols=["headline", "companies"],
            color=colour,
            size=60,
            label=kind,
            responsive=True,
            height=320,  # as the overlay: a layer's fixed width would turn its responsiveness off
        )
        for kind, colour in KIND_COLOURS.items()
    ]
    line = hv.HLine(threshold).opts(color=KIND_COLOURS["alert"], line_dash="dashed", line_width=1)
    return hv.Overlay([*layers, line]).opts(
        title="Headline sentiment (VADER compound); dashed: alert threshold",
        ylim=(-1.05, 1.05),
        height=320,
        legend_position="right",
        responsive=True,
        shared_axes=False,
    )
