"""A backtest's report, in one folder: ``equity.png`` (P&L, drawdown and position over time), ``report.html``
(self-contained: the picture embedded, the metrics with their units, the orders, the costs and settings, the
strategy's settings, the benchmarks, how Sharpe and Sortino are annualised) and ``result.json``
(``backtest.plain.result_json``)."""

from __future__ import annotations

import base64
import html
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from backtest.orders import MAKER
from backtest.plain import plain, result_json
from backtest.result import BacktestResult
from models.plots import plt, save_figure  # pyplot with the file-only backend
from operators.arbitrage import split_symbol
from store.schema import backtest_costs

MONEY = "$"  # the quote currency (USDT for BTCUSDT), counted as dollars
UNITS = {
    "net_pnl": MONEY,
    "gross_pnl": MONEY,
    "fees": MONEY,
    "slippage": MONEY,
    "max_drawdown": MONEY,
    "turnover": MONEY,
    "avg_trade_pnl": MONEY,
    "spread_cost": MONEY,
    "trades": "round trips",
    "samples": "equity samples",
    "sharpe": "annualised",
    "sortino": "annualised",
    "win_rate": "% of round trips won",
    "exposure": "% of the time in a position",
    "profit_factor": "gross wins / gross losses",
}
SUFFIX_UNITS = {"_bps": "bps", "_pct": "%", "_s": "s", "_pnl": MONEY}
FRACTIONS = ("win_rate", "exposure")  # fractions 0 to 1, shown as percentages
ID_LIKE = ("id", "seed")  # integers that name something: printed plainly, without separators
ORDER_COUNTS = {  # shown under "Orders", the first four always (said "not recorded" when a result lacks one)
    "orders": "orders sent",
    "cancels": "cancels",
    "clipped": "orders clipped by the limits",
    "rejected": "rejected, by reason",
    "risk_cut_orders": "orders cut by the risk overlay",
}
NOT_METRICS = ("annualisation", *ORDER_COUNTS)  # said in words or in their own table, not as metric rows
STRATEGY_DEFAULTS = "none stated: the strategy's defaults"
YEAR_S = 365 * 86_400
SHORT_S = 86_400  # a run shorter than a day gets the short-sample caveat on Sharpe and Sortino


def write_report(result: BacktestResult, folder: Path) -> dict[str, Path]:
    """Write the report's three files into ``folder`` (made if need be); their paths by kind: ``equity``,
    ``html``, ``json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"equity": folder / "equity.png", "html": folder / "report.html", "json": folder / "result.json"}
    equity_png(paths["equity"], result)
    paths["json"].write_text(json.dumps(result_json(result), indent=2, allow_nan=False) + "\n")
    paths["html"].write_text(report_html(result, paths["equity"].read_bytes()))
    return paths


def equity_png(path: Path, result: BacktestResult) -> Path:
    """P&L (equity marked to mid less the starting capital), its drawdown from the running peak, and the
    position: three panels on one time axis, their values written plainly (no offset)."""
    ts = np.asarray(result.equity_ts, dtype=np.int64)
    capital = starting_capital(result)
    pnl = np.asarray(result.equity, dtype=float) - (capital or 0.0)
    position = np.asarray(result.position, dtype=float)
    fig, (top, middle, bottom) = plt.subplots(
        3, 1, figsize=(10, 7), sharex=True, height_ratios=(3, 2, 1.5), layout="constrained"
    )
    top.set_title(f"{result.strategy} on {result.instrument}: P&L, drawdown and position")
    if len(ts):
        when = ts.astype("datetime64[ns]")
        drawdown = pnl - np.fmax.accumulate(pnl)
        top.plot(when, pnl, color="tab:blue", linewidth=1)
        middle.fill_between(when, drawdown, 0, color="tab:red", alpha=0.4, linewidth=0)
        if len(position) == len(ts):
            bottom.step(when, position, where="post", color="tab:green", linewidth=1)
    else:
        top.text(0.5, 0.5, "no equity samples", ha="center", va="center", transform=top.transAxes)
    top.set_ylabel(f"P&L ({MONEY})" if capital is not None else f"equity ({MONEY})")
    middle.set_ylabel(f"drawdown ({MONEY})")
    bottom.set_ylabel(f"position ({position_unit(result.instrument)})")
    day = f", from {_utc(int(ts[0]))[:10]}" if len(ts) else ""
    bottom.set_xlabel(f"time (UTC{day})")
    for ax in (top, middle, bottom):
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def starting_capital(result: BacktestResult) -> float | None:
    """The capital the run started with, from its settings (``limits.capital``, or ``capital``); None if unstated."""
    limits = result.settings.get("limits")
    capital = limits.get("capital") if isinstance(limits, dict) else result.settings.get("capital")
    return float(capital) if isinstance(capital, int | float) and math.isfinite(capital) else None


def position_unit(instrument: str) -> str:
    """The base asset of ``exchange:symbol`` (BTC for BTCUSDT or BTC-USD), when its symbol splits simply."""
    pair = split_symbol(instrument.rpartition(":")[2].upper())
    return pair[0] if pair else "units of the instrument"


def metric_unit(name: str) -> str:
    if name in UNITS:
        return UNITS[name]
    return next((unit for suffix, unit in SUFFIX_UNITS.items() if name.endswith(suffix)), "")


def metric_text(name: str, value: Any) -> str:
    """A value as the report prints it: times (``*_ns``) as UTC date-times, fractions as percentages, money
    with two decimals, counts with thousands separators, ids plainly, reasons with their counts."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {metric_text('', v)}" for k, v in value.items()) or "none"
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return "undefined" if value is None else str(value)
    if math.isnan(value):
        return "undefined"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if name.endswith("_ns"):
        return _utc(int(value), precise=True)
    if isinstance(value, int | np.integer):
        return str(int(value)) if _id_like(name) else f"{int(value):,}"
    if name in FRACTIONS:
        return f"{value * 100:.1f}"
    return f"{value:,.2f}" if metric_unit(name) == MONEY else f"{value:,.4g}"


def setting_text(name: str, value: Any) -> str:
    """A setting as the report prints it: none for null, lists joined, numbers as ``metric_text`` does except
    that floats keep their precision."""
    if value is None:
        return "none"
    if isinstance(value, list):
        return ", ".join(setting_text(name, v) for v in value) or "none"
    if isinstance(value, float) and math.isfinite(value) and not name.endswith("_ns"):
        return f"{value:,.0f}" if value.is_integer() and abs(value) < 1e15 else f"{value:,}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return metric_text(name, value) if isinstance(value, int | float | dict) else str(value)


def annualisation_note(result: BacktestResult) -> str:
    """How Sharpe and Sortino are annualised: the result's own note when it gives one, else the sampling of
    its equity curve."""
    for source in (result.metrics, result.settings):
        if isinstance(source.get("annualisation"), str):
            return f"Sharpe and Sortino are annualised: {source['annualisation']}."
    ts = np.asarray(result.equity_ts, dtype=np.int64)
    if len(ts) < 2:
        return "Sharpe and Sortino need at least two equity samples; this run has fewer, so they are undefined."
    step_s = _sample_s(ts)
    per_year = YEAR_S / step_s if step_s > 0 else math.nan
    return (
        f"Sharpe and Sortino are computed on the returns between the equity curve's {len(ts):,} samples, one every "
        f"{step_s:g} s (median spacing), and annualised by the square root of the samples in a year of 365 days "
        f"(√{per_year:,.0f} = {math.sqrt(per_year):,.1f})."
    )


def short_sample_note(result: BacktestResult) -> str | None:
    """The caveat on Sharpe and Sortino of a run shorter than a day (None for a longer one)."""
    span_s = (result.end_ns - result.start_ns) / 1e9
    if not 0 <= span_s < SHORT_S:
        return None
    ts = np.asarray(result.equity_ts, dtype=np.int64)
    samples = f" of {_sample_s(ts):g} s samples" if len(ts) >= 2 else ""
    return (
        f"Short sample: annualising from {_duration(span_s)}{samples} gives magnitudes that mean little; "
        "only their sign and comparisons between runs on the same data do."
    )


def report_html(result: BacktestResult, png: bytes) -> str:
    e = html.escape
    settings = _flat({k: v for k, v in result.settings.items() if k not in ("strategy_settings", "context")})
    costs = backtest_costs(settings)
    others = {k: v for k, v in settings.items() if k not in costs}
    strategy_settings = result.settings.get("strategy_settings")
    caveat = short_sample_note(result)
    position = position_unit(result.instrument)
    metrics_rows = "".join(_metric_row(name, value, caveat, position) for name, value in result.metrics.items())
    image = base64.b64encode(png).decode("ascii")
    parts = [
        f"<h1>Backtest {e(result.id)}: {e(result.strategy)} on {e(result.instrument)}</h1>",
        "<p>" + e(_period(result)) + "</p>",
        *_recordings(result),
        f'<img id="equity" src="data:image/png;base64,{image}" alt="P&amp;L, drawdown and position over time">',
        "<h2>Metrics</h2>",
        f"<table id=metrics><tr><th>metric</th><th>value</th><th>unit</th></tr>{metrics_rows}</table>",
        *([f"<p id=short-sample><strong>{e(caveat)}</strong></p>"] if caveat else []),
        f"<p id=annualisation>{e(annualisation_note(result))}</p>",
        f"<p>Money is in the instrument's quote currency, counted as dollars. {e(_fills_line(result))}</p>",
        "<h2>Orders</h2>",
        _orders(result.metrics),
        "<h2>Costs</h2>",
        _table("costs", costs, "none stated in the settings"),
        "<h2>Strategy settings</h2>",
        _table(
            "strategy_settings",
            _flat(strategy_settings) if isinstance(strategy_settings, dict) else {},
            STRATEGY_DEFAULTS,
        ),
        "<h2>Settings</h2>",
        _table("settings", others, "none"),
    ]
    if result.benchmarks:
        scalars = {k: v for k, v in _flat(result.benchmarks).items() if k.split(".")[0] not in _runs(result)}
        parts.append("<h2>Benchmarks (same data)</h2>")
        parts += [_benchmarks(result)] if len(_runs(result)) > 1 else []
        parts += [_table("benchmark_values", scalars, "")] if scalars else []
    body = "\n".join(parts)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Backtest {e(result.id)}</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0; }}
td, th {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
img {{ max-width: 100%; }}
</style></head>
<body>
{body}
</body></html>
"""


def _metric_row(name: str, value: Any, caveat: str | None, position: str) -> str:
    e = html.escape
    if name in NOT_METRICS:
        return ""
    unit = position if name == "final_position" else metric_unit(name)
    if caveat and name in ("sharpe", "sortino"):
        unit += " (short sample: magnitude means little, see below)"
    raw = f' title="{int(value)} ns"' if name.endswith("_ns") and isinstance(value, int | np.integer) else ""
    return f"<tr><td>{e(name)}</td><td class=num{raw}>{e(metric_text(name, value))}</td><td>{e(unit)}</td></tr>"


def _orders(metrics: dict) -> str:
    """The counts of orders, cancels, orders clipped by the limits and rejected ones (by reason)."""
    always = list(ORDER_COUNTS)[:4]
    rows = "".join(
        f"<tr><td>{html.escape(label)}</td><td class=num>"
        + html.escape(metric_text(name, metrics[name]) if name in metrics else "not recorded by this run")
        + "</td></tr>"
        for name, label in ORDER_COUNTS.items()
        if name in metrics or name in always
    )
    return f"<table id=orders><tr><th>count</th><th>value</th></tr>{rows}</table>"


def _recordings(result: BacktestResult) -> list[str]:
    """The traded recordings, and those replayed first without trading (the settings' ``context``)."""
    e = html.escape
    context = [str(r) for r in result.settings.get("context") or []]
    traded = [str(r) for r in result.recordings if str(r) not in context]
    listed = [("recordings", "Recordings (traded)", traded)]
    listed += [("context", "Context (replayed first, not traded)", context)] if context else []
    return [
        f"<p id={id}>{e(label)}: " + (", ".join(f"<code>{e(r)}</code>" for r in paths) or "none") + "</p>"
        for id, label, paths in listed
    ]


def _id_like(name: str) -> bool:
    last = name.rpartition(".")[2]
    return last in ID_LIKE or last.endswith("_id")


def _sample_s(ts: np.ndarray) -> float:
    return float(np.median(np.diff(ts))) / 1e9


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:,.0f} s"
    if seconds < 7_200:
        return f"{seconds / 60:,.0f} min"
    return f"{seconds / 3_600:,.1f} h"


def _utc(ns: int, precise: bool = False) -> str:
    when = datetime.fromtimestamp(ns // 10**9, UTC)
    text = when.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{ns % 10**9 // 10**6:03d} UTC" if precise else f"{text} UTC"


def _period(result: BacktestResult) -> str:
    utc = _utc
    span = (result.end_ns - result.start_ns) / 1e9
    return (
        f"Events from {utc(result.start_ns)} to {utc(result.end_ns)} ({_duration(span)}); "
        f"run finished {utc(result.created_ns)}."
    )


def _fills_line(result: BacktestResult) -> str:
    fills = result.fills
    if not fills:
        return "No fills."
    makers = sum(f.liquidity == MAKER for f in fills)
    fees = sum(f.fee for f in fills)
    slippage = sum(f.slippage for f in fills)
    return (
        f"{len(fills):,} fills ({makers:,} maker, {len(fills) - makers:,} taker): fees {fees:,.2f}, "
        f"slippage {slippage:,.2f}."
    )


def _flat(values: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{name}."))
        else:
            flat[name] = plain(value)
    return flat


def _table(id: str, values: dict[str, Any], empty: str) -> str:
    e = html.escape
    if not values:
        return f"<p id={id}>{e(empty)}</p>"
    rows = "".join(f"<tr><td>{e(k)}</td><td>{e(setting_text(k, v))}</td></tr>" for k, v in values.items())
    return f"<table id={id}><tr><th>setting</th><th>value</th></tr>{rows}</table>"


def _runs(result: BacktestResult) -> dict[str, dict]:
    """The run and each benchmark given as its own metrics, by name."""
    benchmarks = {name: m for name, m in result.benchmarks.items() if isinstance(m, dict)}
    return {result.strategy: result.metrics, **benchmarks}


def _benchmarks(result: BacktestResult) -> str:
    """The benchmarks' metrics side by side with the run's own."""
    e = html.escape
    runs = _runs(result)
    names = list(dict.fromkeys(n for name, m in runs.items() if name != result.strategy for n in m))
    head = "".join(f"<th>{e(name)}</th>" for name in runs)
    rows = "".join(
        f"<tr><td>{e(n)}{f' ({e(metric_unit(n))})' if metric_unit(n) else ''}</td>"
        + "".join(f"<td class=num>{e(metric_text(n, m.get(n)))}</td>" for m in runs.values())
        + "</tr>"
        for n in names
    )
    return f"<table id=benchmarks><tr><th>metric</th>{head}</tr>{rows}</table>"
