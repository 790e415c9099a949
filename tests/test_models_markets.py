"""Training on several instruments and testing on a market never seen: windows and parts per
instrument, inputs that do not depend on an instrument's unit of size, the held-out evaluate path,
and checkpoints of other inputs refused."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pipeline_runs import MODEL_HORIZONS
from typer.testing import CliRunner

from cli.main import app
from dataflows.dataset import build_dataset
from models.bundle import Bundle
from models.checkpoints import BAYES_FILE, CheckpointError
from models.inputs import INPUT_NAMES, Normalizer
from models.nets import NETS
from models.stream import BboEvents, BboStream, EventData
from models.train import Events, split
from operators.features.compute import FeatureState, compute_features
from operators.features.frame import NO_ID, BookFrame
from quantumflow.features import FEATURE_INDEX, FEATURES, LEVELS
from quantumflow.horizons import parse_horizons


def _instrument(name: str, ts: np.ndarray, value: float) -> EventData:
    n = len(ts)
    inputs = np.full((n, len(INPUT_NAMES)), value)
    events = BboEvents(ts, np.arange(n), np.full(n, NO_ID), np.full(n, 100.0), inputs)
    return EventData(name, events, np.zeros((n, 1)), ts[:, None] + 1)


def test_windows_never_span_two_instruments_and_each_tests_on_its_own_last_part():
    # two instruments at overlapping times, each with inputs of its own value
    a = _instrument("venue:A", np.arange(0, 1_000, dtype=np.int64) * 1_000, 1.0)
    b = _instrument("venue:B", np.arange(0, 300, dtype=np.int64) * 1_000 + 500_000, 2.0)
    events = Events([a, b], window=8)
    events.standardize(Normalizer(np.zeros(len(INPUT_NAMES)), np.ones(len(INPUT_NAMES))))
    windows = events.windows(np.arange(len(events)))
    first_of_b = windows[len(a)]
    assert (first_of_b[:-1] == 0).all() and (first_of_b[-1] == 2).all()  # padding, never A's events
    assert set(np.unique(windows[len(a) :])) == {0.0, 2.0}
    assert set(np.unique(windows[: len(a)])) == {0.0, 1.0}

    parts = split(events, None)
    for name, rows in events.instrument_rows().items():
        ts, test = events.ts[rows], parts.test[rows]
        assert test.any() and ts[test].min() > ts[~test].max()  # its own last part, whatever the other's times
        assert parts.test_start[name] == pytest.approx(np.quantile(ts, 0.85), abs=1_000)
    # an instrument named alone is tested whole (a held-out market); the other one only trains
    held_out = split(events, {"venue:B": 0})
    assert held_out.test.tolist() == [False] * len(a) + [True] * len(b)
    assert set(held_out.test_start) == {"venue:B"} and set(held_out.val_start) == {"venue:A"}


def _frame(rng: np.random.Generator, n: int, scale: float) -> BookFrame:
    """A random walk of a 10-level book, its sizes in units of ``scale``."""
    tick = 0.5
    best_bid = 1_000 + tick * np.cumsum(rng.integers(-1, 2, n))
    spread = tick * rng.integers(1, 3, n)
    levels = tick * np.arange(LEVELS)
    sizes = rng.lognormal(0.0, 1.0, (2, n, LEVELS)) * scale
    for i in np.flatnonzero(rng.random(n) < 0.4)[1:]:  # events deeper in the book: the best level stays
        best_bid[i], spread[i], sizes[:, i, 0] = best_bid[i - 1], spread[i - 1], sizes[:, i - 1, 0]
    traded = rng.exponential(1.0, (2, n)) * scale * (rng.random((2, n)) < 0.3)
    return BookFrame(
        ts=np.cumsum(rng.integers(1, 50_000_000, n)).astype(np.int64),
        seq=np.arange(1, n + 1, dtype=np.int64),
        exchange_ts=np.full(n, NO_ID, dtype=np.int64),
        update_id=np.full(n, NO_ID, dtype=np.int64),
        bid_prices=best_bid[:, None] - levels,
        bid_sizes=sizes[0],
        ask_prices=(best_bid + spread)[:, None] + levels,
        ask_sizes=sizes[1],
        buy_volume=traded[0],
        sell_volume=traded[1],
        trade_count=(traded > 0).sum(axis=0).astype(float),
        reset=np.arange(n) == 0,
    )


def _inputs(frame: BookFrame, cuts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The model inputs of the frame's events and the features, fed in batches cut at ``cuts``."""
    state, stream, inputs, features = FeatureState(None), BboStream(), [], []
    for start, stop in zip([0, *cuts], [*cuts, len(frame)], strict=True):
        batch = frame.rows(slice(start, stop))
        rows = compute_features(state, batch)
        inputs.append(stream(batch, rows).inputs)
        features.append(rows)
    return np.vstack(inputs), np.vstack(features)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(1e-4, 1e5), cut=st.integers(1, 199))
def test_inputs_are_the_same_for_a_book_scaled_in_size_and_for_any_cut(seed, scale, cut):
    unit, _ = _inputs(_frame(np.random.default_rng(seed), 200, 1.0), [])
    scaled, _ = _inputs(_frame(np.random.default_rng(seed), 200, scale), [])
    np.testing.assert_allclose(scaled, unit, rtol=1e-7, atol=1e-9)
    batched, _ = _inputs(_frame(np.random.default_rng(seed), 200, 1.0), [cut, min(cut + 37, 199)])
    np.testing.assert_array_equal(batched, unit)


def test_the_order_flow_of_an_event_is_its_levels_flow_since_the_previous_event():
    frame = _frame(np.random.default_rng(3), 500, 1.0)
    inputs, features = _inputs(frame, [])
    l1 = np.column_stack([frame.bid_prices[:, 0], frame.bid_sizes[:, 0], frame.ask_prices[:, 0], frame.ask_sizes[:, 0]])
    event_rows = np.flatnonzero(np.r_[True, (l1[1:] != l1[:-1]).any(axis=1)])
    assert len(event_rows) == len(inputs) < len(frame)  # some book events are not model events
    # level 1: the features' per-event increments summed since the previous model event
    since = np.add.reduceat(features[:, FEATURE_INDEX["ofi_1"]], event_rows)
    unit = (
        features[event_rows, FEATURE_INDEX["bid_depth_10"]] + features[event_rows, FEATURE_INDEX["ask_depth_10"]]
    ) / (2 * LEVELS)
    got = np.sinh(inputs[:, INPUT_NAMES.index("event_ofi_1_per_depth")]) * unit
    np.testing.assert_allclose(got, since, atol=1e-9)
    assert np.abs(inputs[:, INPUT_NAMES.index(f"event_ofi_{LEVELS}_per_depth")]).max() > 0  # deep levels flow too


def test_evaluate_trains_on_one_market_and_tests_on_another_never_seen(simulated_recording, tmp_path):
    binance = simulated_recording / "binance_btcusdt.gz"
    coinbase = [
        simulated_recording / name for name in ("coinbase_level2_btc-usd.gz", "coinbase_market_trades_btc-usd.gz")
    ]
    args = ["evaluate", "--train", binance, *(a for path in coinbase for a in ("--test", path))]
    options = ["--epochs", "1", "--window", "8", "--horizons", ",".join(MODEL_HORIZONS), "--out", tmp_path, "--json"]
    result = CliRunner().invoke(app, [*map(str, args), *map(str, options)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert {"ensemble", "logistic", "majority"} <= set(metrics) and set(metrics["ensemble"]) == set(MODEL_HORIZONS)
    counts = json.loads((tmp_path / "results.json").read_text())["events"]
    horizons = parse_horizons(",".join(MODEL_HORIZONS))
    (trained,) = build_dataset([binance], horizons)
    (tested,) = build_dataset(coinbase, horizons)
    assert tested.instrument != trained.instrument
    assert counts == {"train": counts["train"], "validation": len(trained) - counts["train"], "test": len(tested)}


def test_evaluate_refuses_a_test_that_starts_before_its_instruments_training_ends(simulated_recording):
    binance = str(simulated_recording / "binance_btcusdt.gz")
    result = CliRunner().invoke(app, ["evaluate", "--train", binance, "--test", binance, "--epochs", "1"])
    assert result.exit_code == 2
    assert "binance:BTCUSDT: the test recordings start at " in result.output
    assert "before the training ones end at " in result.output
    assert "Traceback" not in result.output


def test_checkpoints_of_the_inputs_before_size_normalisation_are_refused(simulated_models, tmp_path):
    _, folder, _ = simulated_models
    old_inputs = [f.name for f in FEATURES if f.unit != "price"] + ["weighted_mid_offset_bps"]
    shutil.copytree(folder, tmp_path, dirs_exist_ok=True)
    state = pickle.loads((tmp_path / BAYES_FILE).read_bytes())
    state["meta"]["inputs"] = old_inputs
    (tmp_path / BAYES_FILE).write_bytes(pickle.dumps(state))
    for path in tmp_path.glob("*.pt"):
        checkpoint = torch.load(path, weights_only=True)
        meta = checkpoint["meta"]
        checkpoint["state_dict"] = NETS[checkpoint["kind"]](
            len(old_inputs), len(meta["horizons"]), meta["window"]
        ).state_dict()
        meta["inputs"] = old_inputs
        torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match="trained on other inputs than this version computes; train again"):
        Bundle.load(tmp_path)
