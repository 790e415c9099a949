"""The strategies by name (``quantumflow backtest --strategy NAME``), with defaults sized for BTCUSDT.

Sizes: 0.1 BTC (about $6,000 at August 2024 prices, 6% of the seed's $100,000 capital) for the signal
follower, its null and each execution parent, so that the seed's $10 fixed fee is under 2 bps of a
trade's notional rather than dominating it; 0.01 BTC quotes for the market maker, with at most 0.05 BTC
of inventory either way, so a one-sided run of fills stays a small fraction of the capital.

``make(name, **settings)`` builds one; each setting is converted to its default's type (so settings read
as text or numbers from a command line work: ``horizon=10`` is the horizon ``"10"``). ``make("twap")``
and ``make("immediate")`` build the execution strategy's benchmarks on the same parents: they take the
execution strategy's settings and ignore those of its predictive timing.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from backtest.execution import Immediate, PredictiveExecution, Twap
from backtest.follow import FollowSignal, RandomSignal
from backtest.market_maker import MarketMaker
from backtest.strategy import Strategy

STRATEGIES: dict[str, Callable[..., Strategy]] = {
    "follow": FollowSignal,
    "random": RandomSignal,
    "market-maker": MarketMaker,
    "execution": PredictiveExecution,
}
EXECUTION_BENCHMARKS: dict[str, Callable[..., Strategy]] = {"twap": Twap, "immediate": Immediate}
_KINDS = {float: "a number", int: "a whole number", str: "text"}


def settings_of(factory: Callable[..., Strategy]) -> dict:
    """A factory's settings and their defaults."""
    return {name: p.default for name, p in inspect.signature(factory).parameters.items()}


def _converted(name: str, factory: Callable[..., Strategy], settings: dict) -> dict:
    defaults = settings_of(factory)
    out = {}
    for key, value in settings.items():
        if key not in defaults:
            raise ValueError(f"unknown setting {key!r} for strategy {name!r}: it takes {', '.join(defaults)}")
        kind = type(defaults[key])
        try:
            if kind is int and float(value) != int(float(value)):
                raise ValueError
            out[key] = kind(float(value)) if kind is int else kind(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"setting {key!r} of strategy {name!r} takes {_KINDS.get(kind, kind.__name__)}, not {value!r}"
            ) from None
    return out


def make(name: str, **settings) -> Strategy:
    if name in EXECUTION_BENCHMARKS:
        settings = _converted("execution", PredictiveExecution, settings)
        factory = EXECUTION_BENCHMARKS[name]
        return factory(**{key: value for key, value in settings.items() if key in settings_of(factory)})
    factory = STRATEGIES.get(name)
    if factory is None:
        raise ValueError(f"unknown strategy {name!r}: choose one of {', '.join(STRATEGIES)}")
    return factory(**_converted(name, factory, settings))
