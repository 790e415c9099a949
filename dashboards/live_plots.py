"""The live dashboard's charts: Bokeh figures whose sources are streamed or patched each refresh, never rebuilt.

Each chart has ``clear()`` (a new instrument) and ``add(...)`` (the rows since the last refresh). Axes are
fixed ranges moved by the chart itself: time slides with the data, prices re-centre only when the mid leaves
the middle of the view, so the picture does not jump on every update.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from bokeh.models import ColumnDataSource, HoverTool, Legend, Range1d, Span
from bokeh.palettes import Category10_10, Viridis256
from bokeh.plotting import figure
from bokeh.transform import log_cmap

NS_PER_MS = 1_000_000
HEIGHT = 300


def _figure(title: str, x_range: Range1d | None = None, **options: Any) -> figure:
    plot = figure(
        title=title,
        height=options.pop("height", HEIGHT),
        sizing_mode="stretch_width",
        x_range=x_range or Range1d(0, 1),
        y_range=Range1d(0, 1),
        toolbar_location=None,
        **options,
    )
    plot.x_range.bounds = None
    return plot


def _ms(ts: int) -> float:
    return ts / NS_PER_MS


class TimeWindow:
    """The shared sliding time axis of the time charts: the last ``window_s`` seconds of the data."""

    def __init__(self, window_s: float) -> None:
        self.window_ms = window_s * 1000
        now_ms = time.time() * 1000  # until the store has data: the last minutes, not January 1970
        self.range = Range1d(now_ms - self.window_ms, now_ms)

    def follow(self, latest_ts: int | None) -> None:
        if latest_ts is not None:
            end = _ms(latest_ts)
            if self.range.end != end:
                self.range.update(start=end - self.window_ms, end=end)


class Heatmap:
    """Resting size by price and time (one column per sampled book), the mid and the trades drawn over it."""

    def __init__(self, window: TimeWindow, bucket_ns: int, columns: int) -> None:
        self.rollover = columns
        self.plot = _figure("Depth heatmap: resting size by price over time", window.range, x_axis_type="datetime")
        self.heat = ColumnDataSource({"x": [], "y": [], "size": []})
        self.mids = ColumnDataSource({"x": [], "y": []})
        self.trades = ColumnDataSource({"x": [], "y": [], "radius": [], "color": []})
        colour = log_cmap("size", Viridis256, low=1e-4, high=10, low_color="#440154", high_color="#fde725")
        self.plot.rect(
            "x",
            "y",
            width=bucket_ns / NS_PER_MS,
            height=4,
            height_units="screen",
            source=self.heat,
            fill_color=colour,
            line_color=None,
        )
        mid = self.plot.line("x", "y", source=self.mids, color="white", line_width=2)
        trades = self.plot.scatter("x", "y", size="radius", color="color", source=self.trades, line_color="black")
        items = [("mid (white)", [mid]), ("trades: green buy, red sell", [trades])]
        # below the chart, where it hides no price level
        self.plot.add_layout(Legend(items=items, orientation="horizontal", location="center"), "below")
        self.plot.add_tools(HoverTool(tooltips=[("price", "@y{0,0.00}"), ("size", "@size")], renderers=[]))
        self.plot.background_fill_color = "#440154"

    def clear(self) -> None:
        for source in (self.heat, self.mids, self.trades):
            source.data = {name: [] for name in source.data}

    def add(self, heat: list[tuple], mids: list[tuple], trades: list[tuple]) -> None:
        if heat:
            self.heat.stream(
                {"x": [_ms(r[0]) for r in heat], "y": [r[1] for r in heat], "size": [r[2] for r in heat]},
                rollover=self.rollover,
            )
        if mids:
            self.mids.stream({"x": [_ms(r[0]) for r in mids], "y": [r[1] for r in mids]}, rollover=self.rollover // 5)
        if trades:
            self.trades.stream(
                {
                    "x": [_ms(r[0]) for r in trades],
                    "y": [r[1] for r in trades],
                    "radius": [min(18.0, 4 + 6 * r[2] ** 0.5) for r in trades],
                    "color": ["#2ca02c" if r[3] > 0 else "#d62728" if r[3] < 0 else "#bbbbbb" for r in trades],
                },
                rollover=self.rollover // 5,
            )

    def centre(self, mid: float | None, low: float | None, high: float | None) -> None:
        """Keep the price axis still until the mid leaves its middle half; then centre it on the mid, wide
        enough for the book's ten levels a side."""
        y = self.plot.y_range
        if mid is None:
            return
        span = y.end - y.start
        inside = y.start + span / 4 <= mid <= y.end - span / 4
        if inside and span > 0 and y.end > 1:
            return
        half = max(mid * 2e-4, 0.6 * (high - low)) if low is not None and high is not None else mid * 5e-4
        y.update(start=mid - half, end=mid + half)


class Lines:
    """A time chart of named lines, each drawn the first time it appears; optional dashed reference levels."""

    def __init__(
        self,
        title: str,
        window: TimeWindow,
        y_label: str,
        y_range: tuple[float, float] | None = None,
        rollover: int = 1000,
        height: int = 220,
    ) -> None:
        self.plot = _figure(title, window.range, x_axis_type="datetime", height=height)
        self.plot.yaxis.axis_label = y_label
        self.fixed = y_range
        if y_range:
            self.plot.y_range.update(start=y_range[0], end=y_range[1])
        self.rollover = rollover
        self.sources: dict[str, ColumnDataSource] = {}
        self.colours = itertools.cycle(Category10_10)
        self.levels: dict[str, Span] = {}

    def clear(self) -> None:
        for source in self.sources.values():
            source.data = {"x": [], "y": []}

    def add(self, points: dict[str, list[tuple[int, float | None]]]) -> None:
        for name, rows in points.items():
            rows = [(t, v) for t, v in rows if v is not None]
            if not rows:
                continue
            source = self.sources.get(name)
            if source is None:
                source = self.sources[name] = ColumnDataSource({"x": [], "y": []})
                colour = next(self.colours)
                self.plot.line("x", "y", source=source, color=colour, line_width=2, legend_label=name)
                self.plot.legend.location = "top_left"
                self.plot.legend.label_text_font_size = "8pt"
                self.plot.legend.click_policy = "hide"  # a click on a name hides its line, to see those under it
            source.stream({"x": [_ms(t) for t, _ in rows], "y": [v for _, v in rows]}, rollover=self.rollover)
        if not self.fixed:
            self._grow()

    def reference(self, name: str, value: float, colour: str) -> None:
        span = self.levels.get(name)
        if span is None:
            span = self.levels[name] = Span(dimension="width", line_dash="dashed", line_color=colour, line_width=2)
            self.plot.add_layout(span)
        span.location = value

    def _grow(self) -> None:
        """Widen the value axis to hold every point (it never shrinks, so it does not jump back and forth)."""
        values = [v for s in self.sources.values() for v in s.data["y"]]
        if not values:
            return
        y = self.plot.y_range
        low, high = min(values), max(values)
        pad = 0.1 * (high - low or abs(high) or 1)
        start = min(low - pad, y.start) if y.end > y.start + 1e-12 and y.end != 1 else low - pad
        end = max(high + pad, y.end) if y.end != 1 else high + pad
        if (start, end) != (y.start, y.end):
            y.update(start=start, end=end)


class Calibration:
    """Reliability diagram: how often predictions of each confidence were right, per horizon."""

    def __init__(self) -> None:
        self.plot = _figure("Calibration of matured predictions", height=260)
        self.plot.x_range.update(start=0.3, end=1)
        self.plot.y_range.update(start=0, end=1)
        self.plot.xaxis.axis_label = "confidence"
        self.plot.yaxis.axis_label = "share right"
        self.plot.line([0, 1], [0, 1], color="#999999", line_dash="dotted")
        self.sources: dict[str, ColumnDataSource] = {}
        self.colours = itertools.cycle(Category10_10)

    def show(self, curves: dict[str, list[dict]]) -> None:
        for name, bins in curves.items():
            data = {"x": bins["confidence"], "y": bins["accuracy"]}
            source = self.sources.get(name)
            if source is None:
                source = self.sources[name] = ColumnDataSource(data)
                colour = next(self.colours)
                self.plot.line("x", "y", source=source, color=colour, legend_label=f"horizon {name}")
                self.plot.scatter("x", "y", source=source, color=colour, size=6)
                self.plot.legend.location = "top_left"
            elif source.data != data:
                source.data = data

    def clear(self) -> None:
        for source in self.sources.values():
            source.data = {"x": [], "y": []}


class OfiBars:
    """Multi-level order flow imbalance over the last second, one bar per book level (patched in place)."""

    def __init__(self, levels: int) -> None:
        self.plot = _figure("Order flow imbalance by level (last 1 s)", height=220)
        self.plot.x_range.update(start=0.4, end=levels + 0.6)
        self.plot.y_range.update(start=-1, end=1)
        self.plot.xaxis.axis_label = "level"
        self.source = ColumnDataSource(
            {"x": list(range(1, levels + 1)), "top": [0.0] * levels, "color": ["#999999"] * levels}
        )
        self.plot.vbar("x", top="top", width=0.8, color="color", source=self.source)

    def show(self, values: list[float | None]) -> None:
        tops = [0.0 if v is None else float(v) for v in values]
        colours = ["#2ca02c" if v > 0 else "#d62728" for v in tops]
        self.source.patch({"top": [(slice(0, len(tops)), tops)], "color": [(slice(0, len(tops)), colours)]})
        y = self.plot.y_range
        reach = max([abs(v) for v in tops] + [1e-9]) * 1.1
        if reach > y.end:  # grows, never shrinks within a view
            y.update(start=-reach, end=reach)

    def clear(self) -> None:
        self.plot.y_range.update(start=-1, end=1)
