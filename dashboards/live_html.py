"""The live dashboard's text panels as HTML: the ladder, the predictions, the scores, microstructure, arbitrage,
the stored backtests.

Pure functions from the feed's rows to HTML strings, so a session updates a pane only when its text changed.
Figures carry ``data-testid`` attributes: what the browser test reads and compares with the store.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import orjson

from dashboards.live_data import BACKTESTS_SHOWN, OFI_COLUMNS, Scores, volatility_bps
from dashboards.live_settings import LiveSettings, signal
from operators.arbitrage import Opportunity
from store.schema import LEVELS, backtest_costs

DIRECTIONS = {-1: ("down", "#d62728"), 0: ("flat", "#7f7f7f"), 1: ("up", "#2ca02c")}
SIGNAL_COLOURS = {
    "strong buy": "#1a7f37",
    "buy": "#2ca02c",
    "neutral": "#7f7f7f",
    "sell": "#d62728",
    "strong sell": "#8b0000",
}
TABLE = 'style="border-collapse:collapse;font-family:monospace;font-size:13px;width:100%"'


def price(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


def size(value: float | None) -> str:
    return "—" if value is None else f"{value:,.6f}".rstrip("0").rstrip(".")


def note(text: str, kind: str = "info") -> str:
    colours = {"info": ("#eef4fb", "#0b5394"), "warning": ("#fff4e5", "#8a4b00"), "danger": ("#fdecea", "#8b0000")}
    back, fore = colours[kind]
    style = f"background:{back};color:{fore};padding:8px 12px;border-radius:4px"
    return f'<div class="live-note" style="{style}">{text}</div>'


def _cell(text: str, testid: str | None = None, align: str = "right", extra: str = "") -> str:
    attr = f' data-testid="{testid}"' if testid else ""
    return f'<td{attr} style="padding:1px 6px;text-align:{align};{extra}">{text}</td>'


def ladder(book: dict[str, Any] | None, features: dict[str, Any] | None, instrument: str) -> str:
    """Asks above bids, ten levels each, with depth bars scaled to the largest size shown."""
    if book is None:
        return note(f"no order book for {escape(instrument)} in the store yet: the flow writes the book table")
    sizes = [book[f"{s}_size_{k}"] or 0.0 for s in ("bid", "ask") for k in range(1, LEVELS + 1)]
    largest = max(sizes) or 1.0
    rows = []
    for side, colour, levels in (("ask", "#f4b6b6", range(LEVELS, 0, -1)), ("bid", "#b6e3b6", range(1, LEVELS + 1))):
        for k in levels:
            p, q = book[f"{side}_price_{k}"], book[f"{side}_size_{k}"]
            if p is None:
                continue
            width = 100 * (q or 0) / largest
            bar = (
                f'<div style="background:{colour};width:{width:.1f}%;height:14px;'
                f'{"margin-left:auto" if side == "bid" else ""}"></div>'
            )
            bid_bar, ask_bar = (bar, "") if side == "bid" else ("", bar)
            rows.append(
                "<tr>"
                + _cell(size(q) if side == "bid" else "", f"ladder-bid-size-{k}" if side == "bid" else None)
                + _cell(bid_bar, extra="width:30%")
                + _cell(price(p), f"ladder-{side}-price-{k}", "center", f"font-weight:{'bold' if k == 1 else 'normal'}")
                + _cell(ask_bar, align="left", extra="width:30%")
                + _cell(size(q) if side == "ask" else "", f"ladder-ask-size-{k}" if side == "ask" else None, "left")
                + "</tr>"
            )
    bid, ask = book["bid_price_1"], book["ask_price_1"]
    mid = (bid + ask) / 2 if bid is not None and ask is not None else None
    spread = ask - bid if mid is not None else None
    micro = (features or {}).get("micro_price")
    spread_bps = 1e4 * spread / mid if mid else None
    stats = (
        f'<div style="font-family:monospace;margin-top:6px">mid <b data-testid="ladder-mid">{price(mid)}</b> · '
        f'spread <b data-testid="ladder-spread">{price(spread)}</b>'
        f"{f' ({spread_bps:.2f} bps)' if spread_bps is not None else ''} · "
        f'micro-price <b data-testid="ladder-micro">{price(micro)}</b></div>'
    )
    return f'<table data-testid="ladder" {TABLE}>{"".join(rows)}</table>{stats}'


def heatmap_caption(levels: int, last_mid: tuple[int, float] | None) -> str:
    """What the heatmap holds, in words (and for the browser test, which cannot read a canvas)."""
    if last_mid is None:
        return note("no book rows in the last minutes for this instrument: nothing to draw")
    return (
        f'<small><span data-testid="heatmap-levels">{levels}</span> resting levels drawn; '
        f'last mid <span data-testid="heatmap-mid">{price(last_mid[1])}</span></small>'
    )


def predictions(rows: list[dict[str, Any]], settings: LiveSettings, why_none: str) -> str:
    """The latest prediction of each horizon: direction, confidence, signal, and every model's view."""
    if not rows:
        return note(why_none, "warning")
    out = []
    for row in rows:
        h = escape(row["horizon"])
        word, colour = DIRECTIONS.get(row["predicted"], ("?", "#000"))
        label = signal(row["p_down"], row["p_up"], settings)
        models = orjson.loads(row["model_probs"] or "{}")
        weights = orjson.loads(row["model_weights"] or "{}")
        lines = "".join(
            "<tr>"
            + _cell(escape(name), align="left")
            + "".join(_cell(f"{p:.3f}") for p in probs)
            + _cell(f"{weights.get(name, 0):.3f}", f"weight-{h}-{escape(name)}")
            + "</tr>"
            for name, probs in models.items()
        )
        head = "".join(_head(c) for c in ("p down", "p flat", "p up", "weight"))
        out.append(
            f'<div data-testid="prediction-{h}" style="margin-bottom:10px">'
            f"<div><b>horizon {h}</b>: "
            f'<span data-testid="prediction-{h}-direction" style="color:{colour};font-weight:bold">{word}</span> · '
            f'confidence <b data-testid="prediction-{h}-confidence">{row["confidence"]:.3f}</b> · '
            f'<span data-testid="prediction-{h}-signal" style="background:{SIGNAL_COLOURS[label]};color:white;'
            f'padding:1px 8px;border-radius:10px">{label}</span></div>'
            f"<table {TABLE}><tr><th style='text-align:left'>model</th>{head}</tr>"
            f"<tr>{_cell('<b>ensemble</b>', align='left')}"
            + "".join(_cell(f"<b>{row[c]:.3f}</b>") for c in ("p_down", "p_flat", "p_up"))
            + _cell("")
            + f"</tr>{lines}</table></div>"
        )
    return "".join(out)


def no_predictions(instrument: str, models_dir: Path) -> str:
    """Why an instrument shows no prediction."""
    if not any(models_dir.glob("*.pt")):
        return f"no predictions: no models in {escape(str(models_dir))}; run quantumflow train"
    return (
        f"no predictions for {escape(instrument)} in the store: the flow that writes it runs without models "
        "(run quantumflow run with the models in place)"
    )


def baseline(models_dir: Path) -> tuple[dict[str, dict[str, float]], str | None]:
    """The logistic baseline's test scores per horizon from the training report, or why there are none."""
    path = models_dir / "report" / "results.json"
    try:
        scores = json.loads(path.read_text())["metrics"]["logistic"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}, f"no logistic baseline: {escape(str(path))} is missing or has none (run quantumflow train)"
    return scores, None


def scores(found: dict[str, Scores], logistic: dict[str, dict[str, float]], why_no_baseline: str | None) -> str:
    if not found:
        return note("no scores yet: no prediction in the last minute has matured (its horizon has not passed)")
    rows = "".join(
        "<tr>"
        + _cell(escape(h), align="left")
        + _cell(str(s.n))
        + _cell(f"{s.accuracy:.3f}", f"accuracy-{escape(h)}")
        + _cell(f"{s.macro_f1:.3f}")
        + _cell(_fmt(logistic.get(h, {}).get("accuracy")))
        + _cell(_fmt(logistic.get(h, {}).get("macro_f1")))
        + "</tr>"
        for h, s in found.items()
    )
    head = "".join(
        f"<th style='text-align:right;padding:1px 6px'>{c}</th>"
        for c in ("matured", "accuracy", "macro-F1", "logistic accuracy", "logistic macro-F1")
    )
    text = f"<table {TABLE}><tr><th style='text-align:left'>horizon</th>{head}</tr>{rows}</table>"
    text += "<small>Ensemble on the predictions matured in the last minute; the logistic baseline's figures are "
    text += "its test-set scores from training (the flow does not run it live).</small>"
    return text + (note(why_no_baseline, "warning") if why_no_baseline else "")


def _head(text: str) -> str:
    return f"<th style='text-align:right;padding:1px 6px'>{text}</th>"


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def microstructure(
    features: dict[str, Any] | None, settings: LiveSettings, vol_forecasts: list[dict[str, Any]] = ()
) -> str:
    """The microstructure table; the volatility alert compares the forecast volatility of the next 10 s
    (the HAR model's, ``vol_forecasts``: the latest stored) with the realized volatility of the last 60 s,
    or, before the flow has forecast any, the realized volatility of the last 10 s."""
    if features is None:
        return note("no features for this instrument in the store yet: the flow writes the features table")
    vol10 = volatility_bps(features["realized_variance_10s"])
    vol60 = volatility_bps(features["realized_variance_60s"])
    forecast = {row["horizon"]: row["forecast"] for row in vol_forecasts if row["model"] == "har"}
    ahead = forecast.get("10s", vol10)
    alert = ahead is not None and vol60 is not None and vol60 > 0 and ahead >= settings.vol_alert_ratio * vol60
    what = "forecast volatility of the next 10 s" if "10s" in forecast else "10-s realized volatility"
    ofi = sum(features[c] or 0.0 for c in OFI_COLUMNS)
    items = [
        (
            "depth imbalance L1 / L5 / L10",
            " / ".join(_fmt(features[f"depth_imbalance_{k}"]) for k in (1, 5, 10)),
            "depth-imbalance",
        ),
        ("order flow imbalance, 10 levels, 1 s", f"{ofi:,.4f}", "ofi"),
        ("realized volatility 10 s / 60 s (bps)", f"{_fmt(vol10)} / {_fmt(vol60)}", "volatility"),
        (
            "forecast volatility next 10 s / 60 s (bps, HAR)",
            f"{_fmt(forecast.get('10s'))} / {_fmt(forecast.get('60s'))}",
            "volatility-forecast",
        ),
        ("spread (bps)", _fmt(features["spread_bps"]), "spread-bps"),
        ("event rate (events/s, last 1 s)", _fmt(features["event_rate_1s"]), "event-rate"),
    ]
    table = "".join(f"<tr>{_cell(name, align='left')}{_cell(value, f'micro-{tid}')}</tr>" for name, value, tid in items)
    text = f"<table {TABLE}>{table}</table>"
    if alert:
        text = (
            note(
                f'<b data-testid="volatility-alert">Volatility alert</b>: {what} {ahead:.2f} bps is '
                f"{ahead / vol60:.1f}x the 60-s realized one (threshold {settings.vol_alert_ratio:g}x, "
                "QF_LIVE_VOL_ALERT_RATIO)",
                "danger",
            )
            + text
        )
    return text


def arbitrage(found: list[Opportunity], instruments: list[str], settings: LiveSettings) -> str:
    compared = [i for i in instruments if settings.arbitrage.asset(i) is not None]
    assets = {settings.arbitrage.asset(i) for i in compared}
    if len(compared) < 2 or len(assets) == len(compared):
        listed = escape(", ".join(instruments))
        return note(
            "no arbitrage to look for: it needs two venues quoting the same asset in the store "
            f"(compared venues and fees: QF_ARB_TAKER_FEES_BPS); instruments: {listed}"
        )
    if not found:
        return note(f"no crossed quotes between venues now ({escape(', '.join(compared))})")
    names = ("asset", "buy on", "at", "sell on", "at", "size", "gross bps", "net bps", "net profit", "quote ages ms")
    head = "".join(_head(c) for c in names)
    rows = "".join(
        "<tr>"
        + "".join(
            _cell(v)
            for v in (
                escape(o.asset),
                escape(o.buy_instrument),
                price(o.buy_price),
                escape(o.sell_instrument),
                price(o.sell_price),
                size(o.size),
                f"{o.gross_bps:.2f}",
                f"{o.net_bps:.2f}",
                f"{o.net_profit:,.2f}",
                f"{o.buy_quote_age_ms:,.0f} / {o.sell_quote_age_ms:,.0f}",
            )
        )
        + "</tr>"
        for o in found[:10]
    )
    return f'<table data-testid="arbitrage" {TABLE}><tr>{head}</tr>{rows}</table><small>after taker fees</small>'


def backtests(rows: list[dict[str, Any]] | None, instrument: str, store_url: str, settings: LiveSettings) -> str:
    """The instrument's newest stored backtests (the store's ``backtests`` rows, newest first) as they were
    saved, and the costs the newest one was run with; or how to make one."""
    if rows is None:
        return note("reading the stored backtests …")
    if not rows:
        return note(
            f'<span data-testid="backtests-none">no backtest of {escape(instrument)} is stored yet: run '
            f"<code>quantumflow backtest RECORDING --strategy follow --instrument {escape(instrument)} "
            f"--store {escape(store_url)}</code> to see how following the signal after costs would have done</span>"
        )
    names = ("period (UTC)", "net P&amp;L", "gross P&amp;L", "fees", "trades", "win rate", "Sharpe")
    head = "<th style='text-align:left'>strategy</th>" + "".join(_head(c) for c in names)
    head += "".join(_head(c) for c in ("max drawdown", "profit factor"))
    lines = []
    for i, row in enumerate(rows):
        metrics = row["metrics"] or {}
        win_rate = row["win_rate"]
        lines.append(
            f'<tr title="backtest {escape(row["id"])}">'
            + _cell(escape(row["strategy"]), f"backtest-{i}-strategy", "left")
            + _cell(_period(row["start_ns"], row["end_ns"]), f"backtest-{i}-period")
            + _cell(_money(row["net_pnl"]), f"backtest-{i}-net-pnl")
            + _cell(_money(metrics.get("gross_pnl")), f"backtest-{i}-gross-pnl")
            + _cell(_money(metrics.get("fees")), f"backtest-{i}-fees")
            + _cell(f"{row['trades']:,}", f"backtest-{i}-trades")
            + _cell("—" if win_rate is None else f"{100 * win_rate:.1f}%", f"backtest-{i}-win-rate")
            + _cell(_number(row["sharpe"]), f"backtest-{i}-sharpe")
            + _cell(_money(row["max_drawdown"]), f"backtest-{i}-max-drawdown")
            + _cell(_number(row["profit_factor"]), f"backtest-{i}-profit-factor")
            + "</tr>"
        )
    newest = rows[0]
    costs = backtest_costs(newest["settings"] or {})
    costs_text = " · ".join(f"{escape(k.removeprefix('costs.'))} {_setting(v)}" for k, v in costs.items())
    return (
        f'<table data-testid="backtests" {TABLE}><tr>{head}</tr>{"".join(lines)}</table>'
        f'<div data-testid="backtest-costs" style="font-family:monospace;margin-top:6px">costs of the newest '
        f"({escape(newest['id'])}): {costs_text or 'none stated in its settings'}</div>"
        f"<small>The newest stored backtests of {escape(instrument)} (at most {BACKTESTS_SHOWN}), as saved by "
        "<code>quantumflow backtest</code> (all of them: GET /v1/backtests), read again every "
        f"{settings.backtests_every_s:g} s. Money in the quote currency; a dash: undefined (e.g. the profit "
        "factor of a run without a losing trade). Sharpe is annualised from the run's equity marked to the "
        "mid; over less than a day of data its size means little (the backtest's report says so).</small>"
    )


def _setting(value: Any) -> str:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return f"{value:g}" if number else escape(json.dumps(value))


def _money(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _period(start_ns: int, end_ns: int) -> str:
    """Start to end in UTC, the end's date left out when it is the start's."""
    start, end = (datetime.fromtimestamp(ns / 1e9, UTC) for ns in (start_ns, end_ns))
    end_format = "%H:%M:%S" if end.date() == start.date() else "%Y-%m-%d %H:%M:%S"
    return f"{start:%Y-%m-%d %H:%M:%S} → {end.strftime(end_format)}"
