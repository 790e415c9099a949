"""The live dashboard's settings, from ``QF_LIVE_*`` (and the arbitrage rules' ``QF_ARB_*``) variables."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from operators.arbitrage import ArbitrageRules, rules_with

DEFAULT_PORT = 8503


@dataclass(frozen=True)
class LiveSettings:
    store_url: str | None = None  # None: QF_STORE, else the default SQLite file
    refresh_s: float = 1.0  # how often the store is read and the pages updated
    window_s: float = 120.0  # how much of the recent past the heatmap and the charts show
    performance_every_s: float = 5.0  # how often the rolling scores are computed again (they read many rows)
    performance_window_s: float = 60.0  # the matured predictions they are computed on
    backtests_every_s: float = 30.0  # how often the stored backtests are read again (they change rarely)
    buy_prob: float = 0.45  # p_up at or above it (and above p_down): buy; p_down likewise: sell
    strong_prob: float = 0.6  # ... at or above it: strong buy / strong sell
    vol_alert_ratio: float = 2.0  # alert when the next 10 s' forecast volatility is this many times the last 60 s'
    arbitrage: ArbitrageRules = field(default_factory=ArbitrageRules)

    @classmethod
    def from_env(cls, store_url: str | None = None, environ: Mapping[str, str] | None = None) -> LiveSettings:
        """Settings from the environment; a malformed variable is a ValueError naming it."""
        env = os.environ if environ is None else environ

        def number(name: str, default: float, low: float, high: float) -> float:
            text = env.get(name, "").strip()
            if not text:
                return default
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not low <= value <= high:
                raise ValueError(f"{name}={text!r}: expected a number from {low:g} to {high:g}")
            return value

        try:
            arbitrage = rules_with(env.get("QF_ARB_TAKER_FEES_BPS", ""), env.get("QF_ARB_ALIASES", ""))
        except ValueError as error:
            raise ValueError(f"QF_ARB_TAKER_FEES_BPS / QF_ARB_ALIASES: {error}") from None
        settings = cls(
            store_url=store_url or env.get("QF_STORE") or None,
            refresh_s=number("QF_LIVE_REFRESH_S", 1.0, 0.1, 60),
            window_s=number("QF_LIVE_WINDOW_S", 120.0, 10, 3600),
            backtests_every_s=number("QF_LIVE_BACKTESTS_S", 30.0, 0.1, 3600),
            buy_prob=number("QF_LIVE_BUY_PROB", 0.45, 1 / 3, 1),
            strong_prob=number("QF_LIVE_STRONG_PROB", 0.6, 1 / 3, 1),
            vol_alert_ratio=number("QF_LIVE_VOL_ALERT_RATIO", 2.0, 1, 1000),
            arbitrage=arbitrage,
        )
        if settings.strong_prob < settings.buy_prob:
            raise ValueError(
                f"QF_LIVE_STRONG_PROB={settings.strong_prob:g} is below QF_LIVE_BUY_PROB={settings.buy_prob:g}"
            )
        return settings


def signal(p_down: float, p_up: float, settings: LiveSettings) -> str:
    """The trading signal of an ensemble prediction: strong buy, buy, neutral, sell or strong sell."""
    if p_up >= p_down:
        side, p = "buy", p_up
    else:
        side, p = "sell", p_down
    if p >= settings.strong_prob:
        return f"strong {side}"
    return side if p >= settings.buy_prob else "neutral"
