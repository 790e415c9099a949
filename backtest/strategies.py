"""The strategies by name (``quantumflow backtest --strategy NAME``), with defaults sized for BTCUSDT.

Sizes: 0.1 BTC (about $6,000 at August 2024 prices, 6% of the seed's $100,000 capital) for the signal
follower, its null and each execution parent, so that the seed's $10 fixed fee is under 2 bps of a
trade's notional rather than dominating it; 0.01 BTC quotes for the market maker, with at most 0.05 BTC
of inventory either way, so a one-sided run of fills stays a small fraction of the capital.

``make(name, **settings)`` builds one; the settings ``risk_jump_ratio`` (and ``risk_cut``, default 0.5)
wrap it in ``RiskOverlay``. ``execution_benchmarks`` builds TWAP and immediate execution on the same
parents as an execution strategy, to be run beside it on the same data.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from backtest.execution import Immediate, PredictiveExecution, Twap
from backtest.follow import FollowSignal, RandomSignal
from backtest.market_maker import MarketMaker
from backtest.risk import RiskOverlay
from backtest.strategy import Strategy

STRATEGIES: dict[str, Callable[..., Strategy]] = {
    "follow": FollowSignal,
    "random": RandomSignal,
    "market-maker": MarketMaker,
    "execution": PredictiveExecution,
}
RISK_SETTINGS = {"risk_jump_ratio": "jump_ratio", "risk_cut": "cut"}


def settings_of(factory: Callable[..., Strategy]) -> dict:
    """A factory's settings and their defaults."""
    return {name: p.default for name, p in inspect.signature(factory).parameters.items()}


def _checked(name: str, factory: Callable[..., Strategy], settings: dict, extra: tuple[str, ...] = ()) -> None:
    known = list(settings_of(factory)) + list(extra)
    for key in settings:
        if key not in known:
            raise ValueError(f"unknown setting {key!r} for strategy {name!r}: it takes {', '.join(known)}")


def make(name: str, **settings) -> Strategy:
    factory = STRATEGIES.get(name)
    if factory is None:
        raise ValueError(f"unknown strategy {name!r}: choose one of {', '.join(STRATEGIES)}")
    _checked(name, factory, settings, tuple(RISK_SETTINGS))
    risk = {RISK_SETTINGS[key]: settings.pop(key) for key in list(settings) if key in RISK_SETTINGS}
    strategy = factory(**settings)
    if risk:
        if "jump_ratio" not in risk:
            raise ValueError("risk_cut needs risk_jump_ratio: the overlay cuts only when volatility jumps")
        strategy = RiskOverlay(strategy, **risk)
    return strategy


def execution_benchmarks(**settings) -> dict[str, Strategy]:
    """TWAP and immediate execution of the same parents as ``make("execution", **settings)`` (its
    horizon and threshold do not apply to them)."""
    _checked("execution", PredictiveExecution, settings)
    parents = {key: settings[key] for key in ("parent_qty", "deadline_s", "slices") if key in settings}
    immediate = {key: value for key, value in parents.items() if key != "slices"}
    return {"twap": Twap(**parents), "immediate": Immediate(**immediate)}
