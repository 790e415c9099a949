"""A backtest from settings to result: the signals (made by the flow's code with the models given, or
read from a store), the strategy (with the risk overlay if asked), the venue, the simulation, the
metrics; for the execution algorithm, TWAP and immediate execution over the same data as benchmarks.
With training recordings, the models are first trained on them by the project's own training."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from backtest.costs import Costs, Limits
from backtest.engine import SAMPLE_NS, Run, simulate
from backtest.execution import shortfall_summary
from backtest.latency import ConstantLatency, FeedLatency
from backtest.metrics import summarize
from backtest.queues import ProbQueue, RiskAverseQueue
from backtest.result import BacktestResult
from backtest.risk import RiskOverlay
from backtest.signals import Signals
from backtest.strategies import EXECUTION_BENCHMARKS, STRATEGIES, make, settings_of
from backtest.venue import SimulatedVenue

OVERLAY_SETTINGS = ("jump_ratio", "cut")
QUEUES = {"risk-averse": RiskAverseQueue, "prob": ProbQueue}


@dataclass
class Settings:
    strategy: str
    strategy_settings: dict = field(default_factory=dict)
    costs: Costs = field(default_factory=Costs)
    limits: Limits = field(default_factory=Limits)
    latency_ms: float | None = 0.0  # None: drawn from the feed latency the recording shows
    queue: str = "risk-averse"
    risk_overlay: dict | None = None  # RiskOverlay's settings; None: none
    sample_ns: int = SAMPLE_NS
    seed: int = 7
    depth_only: bool = False  # match against the depth stream alone, without the best-bid/offer stream

    def described(self) -> dict:
        return {
            "strategy": self.strategy,
            "costs": asdict(self.costs),
            "limits": asdict(self.limits),
            "latency": "feed" if self.latency_ms is None else f"{self.latency_ms:g} ms",
            "queue": self.queue,
            "risk_overlay": self.risk_overlay,
            "equity_sample_s": self.sample_ns / 1e9,
            "seed": self.seed,
            "book": "depth only" if self.depth_only else "depth and best bid/offer",
        }


def strategy_of(settings: Settings, name: str | None = None):
    """The strategy ``name`` (default: the settings') with the settings' own (and the run's seed, for one that
    draws at random and was given none), in the risk overlay if asked; ValueError naming a setting it does
    not take."""
    name = name or settings.strategy
    own = dict(settings.strategy_settings)
    if name in STRATEGIES and "seed" in settings_of(STRATEGIES[name]):
        own.setdefault("seed", settings.seed)
    strategy = make(name, **own)
    if settings.risk_overlay is None:
        return strategy
    unknown = set(settings.risk_overlay) - set(OVERLAY_SETTINGS)
    if unknown:
        raise ValueError(f"unknown risk overlay setting {min(unknown)!r}: it takes {', '.join(OVERLAY_SETTINGS)}")
    values = {}
    for key, value in settings.risk_overlay.items():
        try:
            values[key] = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"risk overlay setting {key!r} takes a number, not {value!r}") from None
    return RiskOverlay(strategy, **values)


def run_strategy(
    paths: Sequence[str | Path],
    instrument: str,
    settings: Settings,
    signals: Signals,
    name: str | None = None,
    feed: str | None = None,
    on_progress: Callable[[int], None] | None = None,
    start_ns: int = 0,
) -> tuple[Run, object]:
    """One simulation of the strategy ``name`` (default: the settings') with the settings' venue."""
    strategy = strategy_of(settings, name)
    latency = (
        FeedLatency(settings.seed) if settings.latency_ms is None else ConstantLatency(int(settings.latency_ms * 1e6))
    )
    venue = SimulatedVenue(settings.costs, QUEUES[settings.queue](), latency)
    run = simulate(
        paths,
        instrument,
        strategy,
        signals,
        venue,
        settings.limits,
        feed,
        settings.sample_ns,
        on_progress,
        settings.depth_only,
        start_ns,
    )
    return run, strategy


def backtest(
    paths: Sequence[str | Path],
    instrument: str,
    settings: Settings,
    signals: Signals,
    context: Sequence[str | Path] = (),
    start_ns: int = 0,
    feed: str | None = None,
    on_progress: Callable[[int], None] | None = None,
    described: dict | None = None,
    backtest_id: str | None = None,
) -> BacktestResult:
    """The backtest of ``settings.strategy`` over the recordings, after the ``context`` ones (replayed first,
    without trading: the book's snapshot, the features' windows), trading from ``start_ns`` (the first event
    of the recordings, when there is context); ``described`` adds to its stored settings (the models'
    folder, where the signals came from, the training recordings)."""
    replayed = [*context, *paths]
    run, strategy = run_strategy(
        replayed, instrument, settings, signals, feed=feed, on_progress=on_progress, start_ns=start_ns
    )
    metrics = summarize(
        run.account, run.equity_ts, run.equity, run.position, settings.limits.capital, settings.sample_ns
    )
    metrics.update({name: run.counts[name] for name in ("orders", "cancels", "clipped", "rejected", "spread_cost")})
    if isinstance(strategy, RiskOverlay):
        metrics["risk_cut_orders"] = strategy.cut_orders
    benchmarks = {}
    if settings.strategy == "execution":
        metrics.update(shortfall_summary(_inner(strategy).parents()))
        for name in EXECUTION_BENCHMARKS:
            _, benchmark = run_strategy(replayed, instrument, settings, signals, name, feed, start_ns=start_ns)
            benchmarks[name] = shortfall_summary(_inner(benchmark).parents())
    stated = {
        **settings.described(),
        "strategy_settings": strategy.params(),
        "context": [str(Path(p)) for p in context],
        **(described or {}),
        "signals": len(signals),
    }
    return BacktestResult(
        backtest_id or new_id(),
        time.time_ns(),
        strategy.name,
        instrument,
        [str(Path(p)) for p in paths],
        run.start_ns,
        run.end_ns,
        stated,
        metrics,
        run.equity_ts,
        run.equity,
        run.position,
        run.fills,
        benchmarks,
    )


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def _inner(strategy):
    return strategy.inner if isinstance(strategy, RiskOverlay) else strategy
