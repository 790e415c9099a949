"""The live dashboard's charts as Bokeh models: where their legends sit, so that none hides the data."""

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
