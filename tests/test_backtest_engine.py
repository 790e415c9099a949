"""The backtest engine on the simulator's recording, with the flow's own predictions: no hidden edge
(a random signal loses about its costs, its mid-to-mid P&L is noise around zero), no look-ahead (a
signal that knows the future wins, one made by the models on the data so far does not see it), and
the accounting adds up."""

from __future__ import annotations

import numpy as np
import pytest

from backtest.costs import Costs, Limits
from backtest.runner import Settings, backtest
from backtest.signals import Signals, flow_signals
from dataflows.batches import derive_offline
from models.bundle import Bundle
from models.online import InstrumentPredictor
from operators.instrument import Derived

INSTRUMENT = "binance:BTCUSDT"
FREE = Costs(fixed_fee=0.0, maker_bps=0.0, taker_bps=0.0, slippage_bps=0.0)


@pytest.fixture(scope="module")
def recording(simulated_models):
    return simulated_models.recording


@pytest.fixture(scope="module")
def bundle(simulated_models):
    return Bundle.load(simulated_models.folder)


@pytest.fixture(scope="module")
def signals(recording, bundle) -> Signals:
    return flow_signals([recording], INSTRUMENT, bundle)


def oracle_signals(recording, bundle: Bundle, horizon: int) -> Signals:
    """Signals that know each event's realized class at ``horizon`` (what the labels say it became): for tests only."""
    predictor = InstrumentPredictor(bundle)
    known: dict[int, tuple[int, int]] = {}
    for derived in derive_offline([recording]):
        if type(derived) is Derived and derived.instrument == INSTRUMENT:
            _, matured = predictor.on_batch(derived.frame, derived.features)
            for m in matured:
                if m.horizon == horizon:
                    known[m.prediction.seq] = (m.prediction.ts, m.label)
    seqs = sorted(known)
    probs = np.zeros((len(seqs), 1, 3))
    probs[np.arange(len(seqs)), 0, [known[s][1] for s in seqs]] = 1.0
    ts = np.array([known[s][0] for s in seqs], dtype=np.int64)
    return Signals((bundle.horizons[horizon].name,), ts, np.array(seqs), probs, np.empty(0, np.int64), np.empty(0))


def run(recording, signals, strategy, costs=FREE, **strategy_settings):
    settings = Settings(strategy, strategy_settings, costs, Limits(capital=100_000.0))
    return backtest([recording], INSTRUMENT, settings, signals)


def mid_to_mid(result) -> float:
    """The P&L before every cost, the spread included: what a signal's direction alone earned."""
    m = result.metrics
    return m["net_pnl"] + m["fees"] + m["slippage"] + m["spread_cost"]


def test_the_accounting_adds_up(recording, signals):
    result = run(recording, signals, "follow", Costs(), horizon=signals.horizons[0], threshold=0.0)
    m = result.metrics
    assert m["trades"] > 10
    assert result.equity[-1] - 100_000.0 == pytest.approx(m["net_pnl"], abs=1e-6)
    assert m["net_pnl"] == pytest.approx(m["gross_pnl"] - m["fees"] - m["slippage"], abs=1e-6)
    assert m["fees"] == pytest.approx(10.0 * len({f.order_id for f in result.fills}))


def test_a_random_signal_loses_its_costs_and_its_direction_earns_nothing(recording, signals):
    results = [
        run(recording, signals, "random", Costs(), horizon=signals.horizons[0], threshold=0.0, seed=seed)
        for seed in range(8)
    ]
    earned = np.array([mid_to_mid(r) for r in results])
    assert all(r.metrics["net_pnl"] < 0 for r in results)
    assert abs(earned.mean()) < 3 * earned.std(ddof=1) / np.sqrt(len(earned)) + 1e-9


def test_a_signal_that_knows_the_future_wins_and_the_models_do_not_see_it(recording, bundle, signals):
    horizon = len(bundle.horizons) - 1  # the longest: its moves are the largest against the spread
    name = bundle.horizons[horizon].name
    oracle = run(recording, oracle_signals(recording, bundle, horizon), "follow", horizon=name, threshold=0.5)
    assert oracle.metrics["trades"] > 20
    assert oracle.metrics["net_pnl"] > 0  # with no fees it wins even after paying the spread
    assert oracle.metrics["win_rate"] > 0.5
    models = run(recording, signals, "follow", horizon=name, threshold=0.0)
    assert mid_to_mid(models) < mid_to_mid(oracle) / 2
