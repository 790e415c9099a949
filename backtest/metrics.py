"""A backtest's economics by plain names, from its account and its equity curve.

Sharpe and Sortino are annualised from the sampling the equity curve actually has: one return per
sample period, and crypto trades all year round, so ``periods per year = 365 * 24 * 3600 s / period``;
the ``annualisation`` field says it in words. Returns are simple returns of equity marked to mid
between consecutive samples; both ratios are None when the returns do not vary (no trade, or too few
samples). Sortino's downside deviation is the root mean square of the negative returns over all
periods (zero for the others).
"""

from __future__ import annotations

import math

import numpy as np

from backtest.account import Account

SECONDS_PER_YEAR = 365 * 24 * 3600
EPS = 1e-9


def drawdown(equity: np.ndarray) -> np.ndarray:
    """How far equity is below its running peak, in money (>= 0), at each sample."""
    equity = np.asarray(equity, dtype=float)
    if equity.size == 0:
        return equity
    return np.maximum.accumulate(equity) - equity


def summarize(
    account: Account,
    equity_ts: np.ndarray,
    equity: np.ndarray,
    position: np.ndarray,
    capital: float,
    sample_ns: int,
) -> dict:
    equity = np.asarray(equity, dtype=float)
    position = np.asarray(position, dtype=float)
    net_pnl = float(equity[-1] - capital) if equity.size else 0.0
    pnls = np.array([rt.pnl for rt in account.round_trips])
    wins, losses = pnls[pnls > 0], pnls[pnls < 0]
    durations_s = [(rt.exit_ts - rt.entry_ts) / 1e9 for rt in account.round_trips]
    peaks = np.maximum.accumulate(equity) if equity.size else equity
    down = peaks - equity
    with np.errstate(divide="ignore", invalid="ignore"):
        down_pct = np.where(peaks > 0, down / peaks * 100, 0.0)
    sample_s = sample_ns / 1e9
    periods_per_year = SECONDS_PER_YEAR / sample_s
    sharpe, sortino = _ratios(equity, periods_per_year)
    return {
        "net_pnl": net_pnl,
        "gross_pnl": net_pnl + account.fees + account.slippage,
        "fees": account.fees,
        "slippage": account.slippage,
        "trades": len(pnls),
        "fills": account.fills,
        "win_rate": float(len(wins) / len(pnls)) if len(pnls) else None,
        "profit_factor": float(wins.sum() / -losses.sum()) if len(losses) else None,
        "avg_trade_pnl": float(pnls.mean()) if len(pnls) else None,
        "avg_trade_duration_s": float(np.mean(durations_s)) if durations_s else None,
        "max_drawdown": float(down.max()) if down.size else 0.0,
        "max_drawdown_pct": float(down_pct.max()) if down.size else 0.0,
        "sharpe": sharpe,
        "sortino": sortino,
        "annualisation": (
            f"sqrt({SECONDS_PER_YEAR} s / {sample_s:g} s) from equity marked to mid every {sample_s:g} s"
        ),
        "return_pct": net_pnl / capital * 100,
        "turnover": account.turnover,
        "exposure": float(np.mean(np.abs(position) > EPS)) if position.size else 0.0,
        "final_position": account.position,
        "samples": int(equity.size),
        "start_ns": int(equity_ts[0]) if len(equity_ts) else None,
        "end_ns": int(equity_ts[-1]) if len(equity_ts) else None,
    }


def _ratios(equity: np.ndarray, periods_per_year: float) -> tuple[float | None, float | None]:
    if equity.size < 3:
        return None, None
    returns = np.diff(equity) / equity[:-1]
    mean = returns.mean()
    scale = math.sqrt(periods_per_year)
    std = returns.std(ddof=1)
    sharpe = float(mean / std * scale) if std > 0 else None
    downside = math.sqrt(np.mean(np.minimum(returns, 0.0) ** 2))
    sortino = float(mean / downside * scale) if downside > 0 else None
    return sharpe, sortino
