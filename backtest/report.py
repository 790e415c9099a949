"""A backtest's report, in one folder: ``equity.png`` (equity, drawdown and position over time), ``report.html``
(self-contained: the picture embedded, the metrics with their units, the costs and settings, the benchmarks, how
Sharpe and Sortino are annualised) and ``result.json`` (``backtest.plain.result_json``)."""

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
    "trades": "round trips",
    "sharpe": "annualised",
    "sortino": "annualised",
    "win_rate": "fraction, 0 to 1",
    "exposure": "fraction of time, 0 to 1",
    "profit_factor": "gross wins / gross losses",
}
SUFFIX_UNITS = {"_bps": "bps", "_pct": "%", "_s": "s", "_pnl": MONEY}
YEAR_S = 365 * 86_400


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
    """Equity marked to mid, its drawdown from the running peak, and the position: three panels on one time axis."""
    ts = np.asarray(result.equity_ts, dtype=np.int64)
    equity = np.asarray(result.equity, dtype=float)
    position = np.asarray(result.position, dtype=float)
    fig, (top, middle, bottom) = plt.subplots(
        3, 1, figsize=(10, 7), sharex=True, height_ratios=(3, 2, 1.5), layout="constrained"
    )
    top.set_title(f"{result.strategy} on {result.instrument}: equity, drawdown and position")
    if len(ts):
        when = ts.astype("datetime64[ns]")
        drawdown = equity - np.fmax.accumulate(equity)
        top.plot(when, equity, color="tab:blue", linewidth=1)
        middle.fill_between(when, drawdown, 0, color="tab:red", alpha=0.4, linewidth=0)
        if len(position) == len(ts):
            bottom.step(when, position, where="post", color="tab:green", linewidth=1)
    else:
        top.text(0.5, 0.5, "no equity samples", ha="center", va="center", transform=top.transAxes)
    top.set_ylabel(f"equity ({MONEY})")
    middle.set_ylabel(f"drawdown ({MONEY})")
    bottom.set_ylabel("position")
    day = f", from {_utc(int(ts[0]))[:10]}" if len(ts) else ""
    bottom.set_xlabel(f"time (UTC{day})")
    for ax in (top, middle, bottom):
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def metric_unit(name: str) -> str:
    if name in UNITS:
        return UNITS[name]
    return next((unit for suffix, unit in SUFFIX_UNITS.items() if name.endswith(suffix)), "")


def metric_text(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return "undefined" if value is None else str(value)
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if math.isnan(value):
        return "undefined"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:,.2f}" if metric_unit(name) == MONEY else f"{value:,.4g}"


def annualisation_note(result: BacktestResult) -> str:
    """How Sharpe and Sortino are annualised: the result's own note when it gives one, else the sampling of
    its equity curve."""
    for source in (result.metrics, result.settings):
        if isinstance(source.get("annualisation"), str):
            return source["annualisation"]
    ts = np.asarray(result.equity_ts, dtype=np.int64)
    if len(ts) < 2:
        return "Sharpe and Sortino need at least two equity samples; this run has fewer, so they are undefined."
    step_s = float(np.median(np.diff(ts))) / 1e9
    per_year = YEAR_S / step_s if step_s > 0 else math.nan
    return (
        f"Sharpe and Sortino are computed on the returns between the equity curve's {len(ts):,} samples, one every "
        f"{step_s:g} s (median spacing), and annualised by the square root of the samples in a year of 365 days "
        f"(√{per_year:,.0f} = {math.sqrt(per_year):,.1f}). Over a short recording this scales a few hours' "
        "behaviour to a year: read them as rates, not forecasts."
    )


def report_html(result: BacktestResult, png: bytes) -> str:
    e = html.escape
    settings = _flat(result.settings)
    costs = backtest_costs(settings)
    others = {k: v for k, v in settings.items() if k not in costs}
    metrics_rows = "".join(
        f"<tr><td>{e(name)}</td><td class=num>{e(metric_text(name, value))}</td><td>{e(metric_unit(name))}</td></tr>"
        for name, value in result.metrics.items()
    )
    image = base64.b64encode(png).decode("ascii")
    parts = [
        f"<h1>Backtest {e(result.id)}: {e(result.strategy)} on {e(result.instrument)}</h1>",
        "<p>" + e(_period(result)) + "</p>",
        "<p>Recordings: " + ", ".join(f"<code>{e(str(r))}</code>" for r in result.recordings) + "</p>",
        f'<img id="equity" src="data:image/png;base64,{image}" alt="equity, drawdown and position over time">',
        "<h2>Metrics</h2>",
        f"<table id=metrics><tr><th>metric</th><th>value</th><th>unit</th></tr>{metrics_rows}</table>",
        f"<p>Money is in the instrument's quote currency, counted as dollars. {e(_fills_line(result))}</p>",
        f"<p id=annualisation>{e(annualisation_note(result))}</p>",
        "<h2>Costs</h2>",
        _table("costs", costs, "none stated in the settings"),
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


def _utc(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _period(result: BacktestResult) -> str:
    utc = _utc
    span = (result.end_ns - result.start_ns) / 1e9
    return (
        f"Events from {utc(result.start_ns)} to {utc(result.end_ns)} ({span:,.0f} s); "
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
        if isinstance(value, dict):
            flat.update(_flat(value, f"{name}."))
        else:
            flat[name] = plain(value)
    return flat


def _table(id: str, values: dict[str, Any], empty: str) -> str:
    e = html.escape
    if not values:
        return f"<p id={id}>{e(empty)}</p>"
    rows = "".join(
        f"<tr><td>{e(k)}</td><td>{e(v if isinstance(v, str) else json.dumps(v))}</td></tr>" for k, v in values.items()
    )
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
