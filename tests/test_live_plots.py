"""The live dashboard's charts as Bokeh models: where their legends sit, so that none hides the data."""

import time

from bokeh.models import Legend

from dashboards.live_plots import Heatmap, Lines, TimeWindow

NS = 1_000_000_000


def test_the_heatmaps_legend_sits_below_the_chart_not_over_its_prices():
    heatmap = Heatmap(TimeWindow(60), bucket_ns=NS, columns=100)
    below = [item for item in heatmap.plot.below if isinstance(item, Legend)]
    assert len(below) == 1 and below[0].orientation == "horizontal"
    assert [item.label.value for item in below[0].items] == ["mid (white)", "trades: green buy, red sell"]
    assert not [item for item in heatmap.plot.center if isinstance(item, Legend)]


def test_a_line_charts_names_hide_their_line_when_clicked():
    lines = Lines("weights", TimeWindow(60), "weight", (0, 1))
    lines.add({"lstm (10)": [(NS, 0.2)], "bayes (10)": [(NS, 0.3)]})
    assert lines.plot.legend[0].click_policy == "hide"
    assert [item.label.value for item in lines.plot.legend[0].items] == ["lstm (10)", "bayes (10)"]


def test_the_time_axis_shows_the_last_minutes_before_any_row_arrives():
    window = TimeWindow(120)
    now_ms = time.time() * 1000
    assert window.range.end - window.range.start == 120_000
    assert now_ms - 5_000 < window.range.end <= now_ms  # not 1970, where the store has no row yet
    window.follow(3 * 60 * NS)
    assert (window.range.start, window.range.end) == (60_000, 180_000)
