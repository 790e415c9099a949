"""The live trading dashboard (Panel, port 8503): book ladder, depth heatmap, predictions, scores, arbitrage,
microstructure and the stored backtests, read from the store the flow writes.

Start it with ``quantumflow dashboard live`` or ``panel serve dashboards/live.py`` (the store: QF_STORE).
Every session shows the process's one shared feed (dashboards/live_data.py): told after each poll, it streams
what the feed appended since its last refresh into its charts.
"""

from __future__ import annotations

import logging
from typing import Any

import panel as pn

from dashboards import live_html as html
from dashboards.live_data import SAMPLES, InstrumentData, LiveFeed
from dashboards.live_plots import Calibration, Heatmap, Lines, OfiBars, TimeWindow
from dashboards.live_settings import LiveSettings
from quantumflow.horizons import horizon_order
from quantumflow.settings import models_dir
from store.schema import LEVELS

# Bokeh checks every new page and warns of charts that get their renderers only once data comes (W-1000)
logging.getLogger("bokeh.core.validation.check").setLevel(logging.ERROR)


def instrument_label(instrument: str) -> str:
    venue, _, symbol = instrument.partition(":")
    return f"{symbol} · {venue}" if symbol else instrument


class LiveSession:
    """One browser session's view of the shared feed."""

    def __init__(self, feed: LiveFeed) -> None:
        self.feed = feed
        settings = feed.settings
        self.settings = settings
        self.models_dir = models_dir()
        self.logistic, self.why_no_baseline = html.baseline(self.models_dir)
        self.select = pn.widgets.Select(name="Instrument", options={}, width=320)
        self.select.param.watch(lambda _: self.switch(), "value")
        self.banner = pn.pane.HTML("", sizing_mode="stretch_width")
        self.status = pn.pane.HTML("", sizing_mode="stretch_width")
        panes = ("ladder", "heatmap", "prediction", "scores", "micro", "arbitrage", "backtests")
        self.panes = {name: pn.pane.HTML("", sizing_mode="stretch_width") for name in panes}
        window = TimeWindow(settings.window_s)
        self.window = window
        self.heatmap = Heatmap(window, feed.bucket_ns, SAMPLES * 2 * LEVELS)
        self.vol = Lines("Realized volatility (10 s) and spread", window, "bps", rollover=SAMPLES)
        self.accuracy = Lines("Rolling accuracy of matured predictions", window, "accuracy", (0, 1), SAMPLES)
        self.weights = Lines("Ensemble weights (mean over the horizons)", window, "weight", (0, 1), SAMPLES)
        self.calibration = Calibration()
        self.ofi = OfiBars(LEVELS)
        self.positions: dict[str, int] = {}
        self.shown: str | None = None
        self.scored: float | None = None

    # -- layout ------------------------------------------------------------------------------------

    def layout(self) -> pn.template.BootstrapTemplate:
        def card(title: str, *objects: Any) -> pn.Card:
            return pn.Card(*objects, title=title, collapsible=False, sizing_mode="stretch_width")

        def chart(plot: Any) -> pn.pane.Bokeh:
            return pn.pane.Bokeh(plot, sizing_mode="stretch_width")

        main = [
            self.banner,
            pn.Row(self.select, self.status, sizing_mode="stretch_width"),
            pn.Row(
                card("Order book", self.panes["ladder"]),
                card("Depth heatmap", chart(self.heatmap.plot), self.panes["heatmap"]),
                sizing_mode="stretch_width",
            ),
            pn.Row(
                card("Prediction", self.panes["prediction"]),
                card("Microstructure", self.panes["micro"], chart(self.ofi.plot), chart(self.vol.plot)),
                sizing_mode="stretch_width",
            ),
            card(
                "Performance",
                self.panes["scores"],
                pn.Row(chart(self.accuracy.plot), chart(self.calibration.plot), chart(self.weights.plot)),
            ),
            card("Arbitrage between venues", self.panes["arbitrage"]),
            card("Paper strategy: stored backtests", self.panes["backtests"]),
        ]
        return pn.template.BootstrapTemplate(
            title="QuantumFlow live", main=main, header_background="#0b2e4f", collapsed_sidebar=True
        )

    # -- updates -----------------------------------------------------------------------------------

    def refresh(self) -> None:
        feed = self.feed
        with feed.lock:
            error, instruments, polls = feed.error, list(feed.instruments), feed.polls
            opportunities = list(feed.opportunities)
        url = feed.store.url
        if error is not None:
            reason = " ".join(error.split())  # a driver's message may run over several lines
            reason += "" if reason.endswith((".", "?", "!")) else "."
            self._set(
                self.banner,
                html.note(
                    f'<b data-testid="store-banner">The store cannot be read</b> ({html.escape(url)}): '
                    f"{html.escape(reason)} Retrying every {self.settings.refresh_s:g} s.",
                    "danger",
                ),
            )
        else:
            self._set(self.banner, "")
        if polls == 0:
            self._set(self.status, html.note(f"reading the store {html.escape(url)} …"))
            return
        options = {instrument_label(i): i for i in instruments}
        if options != self.select.options:
            self.select.options = options
            if self.select.value not in instruments and instruments:
                self.select.value = instruments[0]
        if not instruments:
            empty = f"no data: the store {html.escape(url)} holds no instrument yet; run quantumflow run"
            self._set(self.panes["ladder"], html.note(empty, "warning"))
            return
        if self.select.value != self.shown:
            self.switch()
            return
        feed.read(self.shown, self._show)
        self._set(self.panes["arbitrage"], html.arbitrage(opportunities, instruments, self.settings))

    def switch(self) -> None:
        """Start the charts over for the instrument now selected."""
        self.shown = self.select.value
        self.positions = {}
        self.scored = None
        for chart in (self.heatmap, self.vol, self.accuracy, self.weights, self.calibration, self.ofi):
            chart.clear()
        if self.shown is not None:
            self.feed.read(self.shown, self._show)

    def _show(self, data: InstrumentData) -> None:
        """Everything new in the instrument's data since this session last looked (runs under the feed's lock)."""
        new = {name: self._since(data, name) for name in ("heat", "mids", "trades", "micro", "weights", "accuracy")}
        book, features = data.book, data.features
        self.window.follow(data.latest_ts)
        self.heatmap.add(new["heat"], new["mids"], new["trades"])
        if book is not None:
            bid, ask = book["bid_price_1"], book["ask_price_1"]
            mid = None if bid is None or ask is None else (bid + ask) / 2
            self.heatmap.centre(mid, book[f"bid_price_{LEVELS}"], book[f"ask_price_{LEVELS}"])
        micro = new["micro"]
        self.vol.add({"volatility 10 s": [(r[0], r[1]) for r in micro], "spread": [(r[0], r[2]) for r in micro]})
        self.weights.add(_by_name(new["weights"]))
        self.accuracy.add(dict(sorted(_by_name(new["accuracy"]).items(), key=lambda item: horizon_order(item[0]))))
        for horizon, scores in self.logistic.items():
            if "accuracy" in scores and horizon in data.scores:
                self.accuracy.reference(f"logistic {horizon}", scores["accuracy"], "#999999")
        if data.scored != self.scored:
            self.scored = data.scored
            self.calibration.show({h: s.calibration for h, s in data.scores.items()})
        if features is not None:
            self.ofi.show([features[f"ofi_{k}_1s"] for k in range(1, LEVELS + 1)])
        self._set(
            self.panes["heatmap"],
            html.heatmap_caption(len(data.heat.rows), data.mids.rows[-1] if data.mids.rows else None),
        )
        why = html.no_predictions(data.instrument, self.models_dir)
        self._set(self.panes["ladder"], html.ladder(book, features, data.instrument))
        self._set(self.panes["prediction"], html.predictions(data.predictions, self.settings, why))
        self._set(
            self.panes["scores"],
            html.scores(data.scores, self.logistic, self.why_no_baseline)
            if data.predictions
            else html.note(why, "warning"),
        )
        self._set(self.panes["micro"], html.microstructure(features, self.settings, data.vol_forecasts))
        self._set(
            self.panes["backtests"], html.backtests(data.backtests, data.instrument, self.feed.store.url, self.settings)
        )
        latest = data.latest_ts
        self._set(
            self.status,
            f'<div style="padding-top:28px;color:#57606a">{html.escape(self.feed.store.url)} · '
            f"latest event {_clock(latest)} · refresh every {self.settings.refresh_s:g} s</div>",
        )

    def _since(self, data: InstrumentData, name: str) -> list[tuple]:
        series = getattr(data, name)
        position = self.positions.get(name, -1)
        rows, whole = series.since(position)
        self.positions[name] = series.end
        if whole and position >= 0:  # this session fell behind what the feed keeps: the chart starts over
            self.heatmap.clear()
        return rows

    @staticmethod
    def _set(pane: pn.pane.HTML, text: str) -> None:
        if pane.object != text:
            pane.object = text


def _by_name(rows: list[tuple[int, dict[str, float]]]) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for ts, values in rows:
        for name, value in values.items():
            out.setdefault(name, []).append((ts, value))
    return out


def _clock(ts: int | None) -> str:
    if ts is None:
        return "—"
    import datetime as dt

    return dt.datetime.fromtimestamp(ts / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def build_app(settings: LiveSettings) -> pn.template.BootstrapTemplate:
    """One session's page, refreshed from the process's shared feed."""
    pn.extension(sizing_mode="stretch_width")
    feed = LiveFeed.shared(settings)
    session = LiveSession(feed)
    page = session.layout()
    session.refresh()
    document = pn.state.curdoc
    if document is None:  # not served (a notebook, a test): refresh on a timer instead
        pn.state.add_periodic_callback(session.refresh, period=int(settings.refresh_s * 1000))
        return page

    def told() -> None:  # on the feed's thread after each poll: the refresh runs on the session's own loop
        document.add_next_tick_callback(session.refresh)

    feed.listen(told)
    document.on_session_destroyed(lambda _: feed.forget(told))
    return page


if __name__.startswith("bokeh"):  # run by `panel serve dashboards/live.py`
    build_app(LiveSettings.from_env()).servable()
