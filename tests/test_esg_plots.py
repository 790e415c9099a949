"""The ESG dashboard's charts, rendered as the page renders them."""

import logging

import holoviews as hv
import pandas as pd

from dashboards.esg_plots import sentiment_chart


def test_the_sentiment_chart_stretches_to_the_page_without_a_warning(caplog):
    headlines = pd.DataFrame(
        {
            "time": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
            "compound": [0.4, -0.6, 0.0],
            "headline": ["up", "down", "flat"],
            "companies": ["A", "B", ""],
            "kind": ["holding", "alert", "no company"],
        }
    )
    with caplog.at_level(logging.WARNING):
        plot = hv.render(sentiment_chart(headlines, -0.5), backend="bokeh")
    assert "responsive mode could not be enabled" not in caplog.text
    assert plot.sizing_mode == "stretch_width" and plot.height == 320
    assert {item.label["value"] for item in plot.legend[0].items} >= {"holding", "alert"}
