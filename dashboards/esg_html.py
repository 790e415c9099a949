"""Small display pieces shared by the ESG views: stat cards, rating badges, read-only tables."""

from __future__ import annotations

from html import escape

import pandas as pd
import panel as pn

from dashboards.esg_plots import RATING_COLOURS

CARD_STYLE = (
    "display:inline-block;min-width:120px;padding:8px 14px;margin:4px;border:1px solid #d0d7de;"
    "border-radius:8px;background:#f6f8fa"
)


def badge(rating: str | None, testid: str) -> str:
    colour = RATING_COLOURS.get(rating or "", "#8c959f")
    return (
        f'<span data-testid="{testid}" style="background:{colour};color:white;font-weight:700;'
        f'padding:2px 10px;border-radius:6px;font-size:22px">{escape(rating or "n/a")}</span>'
    )


def stat(label: str, value_html: str, testid: str | None = None) -> str:
    """A labelled figure; ``value_html`` is trusted HTML (escape user text before passing it)."""
    marker = f' data-testid="{testid}"' if testid else ""
    return (
        f'<div style="{CARD_STYLE}"><div style="color:#57606a;font-size:12px">{escape(label)}</div>'
        f'<div style="font-size:22px;font-weight:600"{marker}>{value_html}</div></div>'
    )


def stats_row(*cards: str) -> pn.pane.HTML:
    return pn.pane.HTML("".join(cards), sizing_mode="stretch_width")


def table(frame: pd.DataFrame, **options) -> pn.widgets.Tabulator:
    """A read-only table, numbers rounded for reading."""
    options = {
        "disabled": True,
        "show_index": False,
        "layout": "fit_data_table",
        "sizing_mode": "stretch_width",
    } | options
    return pn.widgets.Tabulator(frame.round(2), **options)


def error(message: str) -> pn.pane.Alert:
    return pn.pane.Alert(escape(message), alert_type="danger", sizing_mode="stretch_width")
