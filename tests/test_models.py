"""The models: ensemble weights and temperatures by hand, the networks' shapes, the online learner,
and a small training run on a simulated recording whose checkpoints serve the flow."""

import gzip
import itertools
import json
import logging
import pickle
import shutil

import numpy as np
import pytest
import torch
from pipeline_runs import MODEL_HORIZONS, replay

from dataflows.batches import derive_offline
from dataflows.training import ENSEMBLE
from models.bayes import OnlineBayes
from models.bundle import Bundle
from models.calibration import fit_temperature, softmax
from models.checkpoints import CheckpointError
from models.ensemble import FORGETTING, SHARPNESS, Ensemble
from models.inputs import INPUT_NAMES, ONLINE_INPUT_NAMES, Normalizer, raw_inputs
from models.nets import NETS
from models.online import InstrumentPredictor
from models.stream import BboStream
from operators.instrument import Derived
from quantumflow.features import FEATURE_INDEX, FEATURE_NAMES, LEVELS


def test_ensemble_weights_follow_the_rolling_log_loss():
    ensemble = Ensemble(["a", "b"], horizons=1)
    assert ensemble.weights().tolist() == [[0.5, 0.5]]
    ensemble.learn(0, np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]]), label=1)
    # rolling losses (1 - λ) * (-ln 0.5, -ln 0.1); weights ∝ exp(-η L)
    losses = (1 - FORGETTING) * -np.log([0.5, 0.1])
    expected = np.exp(-SHARPNESS * losses) / np.exp(-SHARPNESS * losses).sum()
    assert ensemble.weights()[0] == pytest.approx(expected)
    mixed = ensemble.combine(np.array([[[0.2, 0.5, 0.3]], [[0.1, 0.1, 0.8]]]), ensemble.weights())
    assert mixed[0] == pytest.approx(expected[0] * np.array([0.2, 0.5, 0.3]) + expected[1] * np.array([0.1, 0.1, 0.8]))
    for _ in range(5000):  # "a" keeps being right: it ends up with nearly all the weight
        ensemble.learn(0, np.array([[0.1, 0.8, 0.1], [0.45, 0.1, 0.45]]), label=1)
    assert ensemble.weights()[0, 0] > 0.99


def test_temperature_undoes_overconfidence():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(20_000, 3))
    labels = np.array([rng.choice(3, p=p) for p in softmax(scores)])
    assert fit_temperature(3 * scores, labels) == pytest.approx(3, rel=0.1)
    assert fit_temperature(scores, labels) == pytest.approx(1, rel=0.1)


@pytest.mark.parametrize("kind", sorted(NETS))
def test_networks_give_logits_per_horizon(kind):
    net = NETS[kind](len(INPUT_NAMES), 4, 16)
    assert net(torch.zeros(5, 16, len(INPUT_NAMES))).shape == (5, 4, 3)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_the_transformer_computes_its_last_layer_for_the_last_step_as_the_whole_layer_would(depth):
    torch.manual_seed(depth)
    net = NETS["transformer"](len(INPUT_NAMES), 4, 16, depth=depth).eval()
    x = torch.randn(9, 16, len(INPUT_NAMES))
    with torch.inference_mode():
        whole = net.encoder(net.embed(x) + net.position)[:, -1]  # every layer at every step
        assert torch.allclose(net.deep(x), whole, atol=1e-5)


def test_online_bayes_learns_and_pickles():
    rng = np.random.default_rng(0)
    bayes = OnlineBayes(horizons=1)
    assert bayes.predict(np.zeros(len(ONLINE_INPUT_NAMES))) == pytest.approx(np.full((1, 3), 1 / 3))
    for _ in range(600):
        label = int(rng.integers(3))
        x = rng.normal(size=len(ONLINE_INPUT_NAMES))
        x[1] += 3 * (label - 1)  # depth imbalance carries the class
        bayes.learn(0, x, label)
    up = np.zeros(len(ONLINE_INPUT_NAMES))
    up[1] = 3
    assert bayes.predict(up)[0].argmax() == 2
    assert pickle.loads(pickle.dumps(bayes)).predict(up) == pytest.approx(bayes.predict(up))
    # (tests/test_online_learning.py: it gives River's GaussianNB's numbers)


def test_inputs_drop_prices_and_standardize():
    rows = np.ones((4, len(FEATURE_NAMES)))
    rows[:, FEATURE_INDEX["mid"]] = 100.0
    rows[:, FEATURE_INDEX["weighted_mid"]] = 100.01
    x = raw_inputs(rows, np.full((4, LEVELS), 0.5))
    assert not {"mid", "spread", "weighted_mid", "micro_price"} & set(INPUT_NAMES)
    assert x[:, INPUT_NAMES.index("weighted_mid_offset_bps")] == pytest.approx(1.0)
    # sizes in units of the mean level size: 20 levels of depth 1 in all, so a unit of 0.1
    assert x[:, INPUT_NAMES.index("ofi_1_per_depth")] == pytest.approx(np.arcsinh(10.0))
    assert x[:, INPUT_NAMES.index("event_ofi_10_per_depth")] == pytest.approx(np.arcsinh(5.0))
    z = Normalizer.fit(np.array([[0.0], [2.0]]))(np.array([[1.0], [np.nan], [1e9]]))
    assert z.ravel().tolist() == [0.0, 0.0, 8.0]


HORIZONS = ",".join(MODEL_HORIZONS)


@pytest.fixture(scope="module")
def trained(simulated_models):
    """Small models fitted on the first 85% of the simulated Binance minute, tested on the rest."""
    return simulated_models


def test_training_reports_every_model_and_baseline(trained):
    _, folder, result = trained
    models = {"lstm", "attention_lstm", "transformer", "bayes", "logistic"}
    assert set(result.metrics) == models | {"mixture", "stacking", "hedge", ENSEMBLE, "majority"}
    assert result.metrics[ENSEMBLE] == result.metrics["hedge"]  # what the flow predicts by default
    for by_horizon in result.metrics.values():
        assert set(by_horizon) == {"10", "1s"}
        for metrics in by_horizon.values():
            assert metrics["n"] > 1000 and 0 <= metrics["ece"] <= 1 and metrics["log_loss"] > 0
    # the simulator's L1 depth imbalance leans on the next mid change: the L1 signals beat the majority class
    assert result.metrics["logistic"]["10"]["macro_f1"] > result.metrics["majority"]["10"]["macro_f1"] + 0.15
    for name in ("confusion.png", "training_curves.png", "ensemble_weights.png", "results.json"):
        assert (folder / "report" / name).stat().st_size > 1000
    assert result.inference_us_per_event > 0


def test_checkpoints_carry_what_serving_needs(trained):
    _, folder, result = trained
    bundle = Bundle.load(folder)
    assert [h.name for h in bundle.horizons] == HORIZONS.split(",")
    assert bundle.thetas.tolist() == list(result.thetas.values())
    checkpoint = torch.load(folder / "lstm.pt", weights_only=True)
    meta = checkpoint["meta"]
    assert meta["inputs"] == list(INPUT_NAMES) and meta["window"] == 8
    assert set(meta["normalization"]) == {"mean", "std"} and len(meta["temperature"]) == 2
    assert {"torch", "numpy", "river", "quantumflow", "python"} <= set(meta["versions"])
    assert meta["trained_on"]["events"]["train"] > 0


def test_bad_model_folders_are_clear_errors(trained, tmp_path):
    with pytest.raises(CheckpointError, match="no trained models in"):
        Bundle.load(tmp_path)
    _, folder, _ = trained
    for path in folder.glob("*.p*"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    checkpoint = torch.load(tmp_path / "lstm.pt", weights_only=True)
    checkpoint["meta"]["thetas"] = [9.0, 9.0]
    torch.save(checkpoint, tmp_path / "lstm.pt")
    with pytest.raises(CheckpointError, match="not trained together"):
        Bundle.load(tmp_path)
    (tmp_path / "lstm.pt").unlink()
    with pytest.raises(CheckpointError, match=r"missing lstm\.pt"):
        Bundle.load(tmp_path)


def _predictions(recording, bundle, rows_per_batch=None):
    """Per event seq: (model inputs, per-model and ensemble probabilities, the mixture's, the stacking
    layer's and the top layer's, the ensemble's and the top layer's decisions) from an offline run, the
    derived batches cut into ``rows_per_batch`` book rows if given."""
    predictor, inputs_stream = InstrumentPredictor(bundle), BboStream()
    out = {}
    for derived in derive_offline([recording]):
        if type(derived) is not Derived:
            continue
        step = rows_per_batch or len(derived.frame)
        for start in range(0, len(derived.frame), step):
            frame = type(derived.frame)(*(column[start : start + step] for column in derived.frame))
            features = derived.features[start : start + step]
            events = inputs_stream(frame, features)
            made, _ = predictor.on_batch(frame, features)
            for p, inputs in zip(made, events.inputs, strict=True):
                decisions = (p.decision, p.hedge_decision)
                out[p.seq] = (inputs, p.model_probs, p.probs, p.mixture, p.stacking, p.hedge, *decisions)
    return out


def test_no_leakage_inputs_and_predictions_ignore_the_future(trained, tmp_path):
    """Cutting the recording after message 6,000 changes nothing at or before the cut."""
    recording, folder, _ = trained
    bundle = Bundle.load(folder)
    cut = _cut(recording, tmp_path / "cut.gz", 6_000)
    whole, part = _predictions(recording, bundle), _predictions(cut, bundle)
    assert 3_000 < len(part) < len(whole) and set(part) <= set(whole)
    for seq, (inputs, *probs) in part.items():
        np.testing.assert_array_equal(inputs, whole[seq][0])
        # the networks run on the batch's windows at once; a shorter last batch may round differently
        # models, ensemble, mixture, stacking, top layer, decisions
        for got, expected in zip(probs, whole[seq][1:], strict=True):
            np.testing.assert_allclose(got, expected, atol=1e-6)


def test_predictions_do_not_depend_on_how_the_stream_is_cut_into_batches(trained, tmp_path):
    """Learning a batch of labels at once gives what learning them one event at a time does: without the
    networks (float32, whose rounding depends on the batch) equal to 1e-12 (sums in another order);
    with them, to their rounding."""
    import dataclasses

    from models.stacking import averaging

    recording, folder, _ = trained
    short = _cut(recording, tmp_path / "short.gz", 3000)
    bundle = Bundle.load(folder)
    online_only = dataclasses.replace(bundle, nets={}, temperatures={}, stacking=averaging(2, len(bundle.horizons)))
    for models, atol in ((online_only, 1e-12), (bundle, 1e-6)):
        one, whole = _predictions(short, models, rows_per_batch=1), _predictions(short, models)
        assert len(one) == len(whole) > 1000
        for seq, (inputs, *probs) in whole.items():
            np.testing.assert_array_equal(inputs, one[seq][0])
            for got, expected in zip(one[seq][1:], probs, strict=True):
                np.testing.assert_allclose(got, expected, rtol=0, atol=atol)


def _cut(recording, path, messages):
    with gzip.open(recording, "rb") as full, gzip.open(path, "wb") as short:
        for _, line in zip(range(messages), full, strict=False):
            short.write(line)
    return path


def _flow_predictions(recording, folder, store, state, fresh=False) -> dict[tuple[int, str], dict]:
    from store import open_store

    replay([recording], f"sqlite:///{store}", models=folder, online_state=state, fresh=fresh)
    with open_store(f"sqlite:///{store}").reader() as reader:
        return {(row["seq"], row["horizon"]): row for row in reader.rows("predictions")}


def test_the_flow_predicts_learns_and_never_restores_a_state_that_saw_its_future(trained, tmp_path):
    recording, folder, _ = trained
    short = _cut(recording, tmp_path / "short.gz", 8000)
    bundle = Bundle.load(folder)
    first = _flow_predictions(short, folder, tmp_path / "a.db", tmp_path / "state")
    offline = _predictions(short, bundle)
    assert len(first) == 2 * len(offline) > 5000
    for (seq, horizon), row in first.items():
        h = HORIZONS.split(",").index(horizon)
        probs = [row["p_down"], row["p_flat"], row["p_up"]]
        predicted = offline[seq][6][h]  # the top layer's decision, not always the most probable class
        assert sum(probs) == pytest.approx(1) and row["confidence"] == probs[predicted]
        assert row["predicted"] == predicted - 1
        np.testing.assert_allclose(probs, offline[seq][2][h], atol=1e-6)
        assert list(json.loads(row["model_probs"])) == bundle.model_names
    matured = [row for row in first.values() if row["label"] is not None]
    assert len(matured) > 0.9 * len(first) and all(row["matured_ts"] > row["ts"] for row in matured)

    again = _flow_predictions(short, folder, tmp_path / "b.db", tmp_path / "state")  # the state saved has seen it
    cold = _flow_predictions(short, folder, tmp_path / "c.db", tmp_path / "state", fresh=True)
    assert again == cold == first  # (test_online_state.py: a later recording restores it)


def test_the_flow_names_models_trained_on_another_source_or_instrument_once_each(trained, tmp_path, caplog):
    from dataflows.run import run_flow
    from dataflows.run_settings import RunSettings
    from simulator import simulate

    recording, folder, _ = trained
    assert Bundle.load(folder).trained_on() == {"binance:BTCUSDT": "simulated"}
    simulate(tmp_path / "eth", seed=3, minutes=1, symbol="ETHUSDT", price=3000.0)
    (tmp_path / "recorded").mkdir()
    copied = shutil.copy(recording, tmp_path / "recorded")  # no simulator's manifest beside it: a recording
    settings = RunSettings(
        (tmp_path / "eth", copied),
        store=f"sqlite:///{tmp_path / 'other.db'}",
        models=folder,
        online_state_dir=tmp_path / "state",
        workers=2,
    )
    with caplog.at_level(logging.WARNING, logger="dataflows.run"):  # the run logs what it warns of
        summary = run_flow(settings)
    trained_on = f"is predicted by the models in {folder}, trained on simulated binance:BTCUSDT:"
    assert sorted(summary.warnings) == sorted(record.getMessage() for record in caplog.records)
    assert [warning.split(" is ")[0] for warning in sorted(summary.warnings)] == [
        "recorded binance:BTCUSDT",  # the same instrument, from another source
        "simulated binance:ETHUSDT",  # other instruments
        "simulated coinbase:ETH-USD",
    ]
    assert all(trained_on in warning for warning in summary.warnings)
    assert summary.rows["predictions"] > 0  # a warning, not a refusal
    same = RunSettings(recording, store=f"sqlite:///{tmp_path / 'same.db'}", models=folder, fresh=True)
    assert run_flow(same).warnings == []


def test_the_flow_resumes_an_instrument_from_its_snapshot_exactly(trained):
    from dataflows.batches import InstrumentBatch, split_by_instrument
    from dataflows.predict import InstrumentLogic, InstrumentStep
    from dataflows.recordings import open_recording

    recording, folder, _ = trained
    messages = list(itertools.islice(open_recording(recording), 6000))
    batches = [
        item
        for start in range(0, len(messages), 500)
        for item in split_by_instrument(messages[start : start + 500])
        if type(item) is InstrumentBatch
    ]
    step = InstrumentStep({}, Bundle.load(folder), restore_from=None, recovery=True)
    assert InstrumentLogic(InstrumentStep({}, None, None), None).snapshot() == b""  # no recovery: nothing to keep
    whole = InstrumentLogic(step, None)
    expected = [whole.on_item(batch)[0] for batch in batches]
    cut = len(batches) // 2
    stopped = InstrumentLogic(step, None)
    for batch in batches[:cut]:
        stopped.on_item(batch)
    snapshot = stopped.snapshot()
    assert type(snapshot) is bytes and len(snapshot) < 4_000_000  # the models stay out of it
    stopped.on_item(batches[cut])  # a snapshot is a copy: what the logic does next leaves it be
    resumed = InstrumentLogic(step, snapshot)
    assert resumed.predictor.bundle is step.models
    # compared as text: NaN features are equal there
    assert repr([resumed.on_item(batch)[0] for batch in batches[cut:]]) == repr(expected[cut:])
    assert any(rows.tables["predictions"] for (rows,) in expected[cut:])
    (end,), _ = resumed.on_eof()
    np.testing.assert_array_equal(end.state["ensemble_losses"], whole.on_eof()[0][0].state["ensemble_losses"])


def test_bench_reports_the_models_cost_per_event(trained, tmp_path):
    from bench.models import bench_models

    recording, folder, _ = trained
    cost = bench_models(_cut(recording, tmp_path / "short.gz", 4000), folder)
    assert cost.predicted_events > 1000 and cost.horizons == 2
    assert 0 < cost.nets_us_per_event < cost.total_us_per_event and cost.online_us_per_event > 0
    parts = {"networks", "online learner", "mixture", "stacking", "top layer", "labels", "rows", "rows written"}
    assert set(cost.parts_us_per_event) >= parts
    assert all(us > 0 for us in cost.parts_us_per_event.values())
    assert cost.flow_events_per_s > 0 and cost.prediction_rows > 2 * cost.predicted_events
    # the feature flow, slowed by the networks' and the rows' writes' time per event of the flow
    added_s = (cost.nets_us_per_event + cost.parts_us_per_event["rows written"]) * cost.predicted_events / 1e6
    assert cost.flow_events >= cost.predicted_events and cost.feature_flow_events_per_s > 0
    expected = 1 / cost.feature_flow_events_per_s + added_s / cost.flow_events
    assert 1 / cost.ceiling_events_per_s == pytest.approx(expected)


def test_snapshots_from_a_client_get_the_ensembles_probabilities(trained):
    from models.serve import SnapshotPredictor

    recording, folder, _ = trained
    frame = next(d.frame for d in derive_offline([recording]) if type(d) is Derived and len(d.frame) > 40)
    snapshots = [
        {
            "ts": int(frame.ts[i]),
            "bids": [[p, q] for p, q in zip(frame.bid_prices[i], frame.bid_sizes[i], strict=True) if q > 0],
            "asks": [[p, q] for p, q in zip(frame.ask_prices[i], frame.ask_sizes[i], strict=True) if q > 0],
        }
        for i in range(40)
    ]
    predictor = SnapshotPredictor.load(folder)
    answers = predictor.predict(snapshots)
    assert [a["horizon"] for a in answers] == HORIZONS.split(",") == predictor.horizons
    for answer in answers:
        probs = [answer["p_down"], answer["p_flat"], answer["p_up"]]
        assert sum(probs) == pytest.approx(1) and answer["confidence"] == max(probs)
        assert (
            set(answer["models"])
            == set(answer["weights"])
            == {"lstm", "attention_lstm", "transformer", "bayes", "logistic"}
        )
    assert predictor.predict(snapshots) == answers  # serving learns nothing: the same question, the same answer
    crossed = {"ts": 1, "bids": [[101.0, 1.0]], "asks": [[100.0, 1.0]]}
    for bad, why in (
        (crossed, "crossed"),
        ({"ts": 1, "bids": [], "asks": [[100.0, 1.0]]}, "no bids"),
        ({"ts": 1, "bids": [[99.0, -1.0]], "asks": [[100.0, 1.0]]}, "positive"),
        ({"ts": 1, "bids": [[98.0, 1.0], [99.0, 1.0]], "asks": [[100.0, 1.0]]}, "best first"),
    ):
        with pytest.raises(ValueError, match=why):
            predictor.predict([bad])
    with pytest.raises(FileNotFoundError, match="no such folder of trained models"):
        SnapshotPredictor.load(folder / "nowhere")


def test_served_nets_give_the_bits_of_the_nets_as_trained(trained):
    """Loaded checkpoints run traced: the same probabilities, bit for bit, whatever the batch."""
    _, folder, _ = trained
    served = Bundle.load(folder)
    as_trained = Bundle.load(folder)
    as_trained.fixed = False
    net = next(iter(served.nets.values()))
    windows = np.random.default_rng(3).standard_normal((1100, served.window, net.wide.in_features)).astype(np.float32)
    for rows in (1, 2, 8, 97, 1100):
        np.testing.assert_array_equal(served.net_probs(windows[:rows]), as_trained.net_probs(windows[:rows]))
    assert served._traced is not None and as_trained._traced is None


def test_an_events_probabilities_do_not_depend_on_its_batchs_size(trained):
    """A live feed brings batches of one event, a replay batches of hundreds: each event's probabilities are the
    same bits in either (small batches are padded up to the rows Torch computes as it does large ones)."""
    _, folder, _ = trained
    bundle = Bundle.load(folder)
    inputs = len(bundle.normalizer.mean)
    windows = np.random.default_rng(5).standard_normal((97, bundle.window, inputs)).astype(np.float32)
    whole = bundle.net_probs(windows)
    for start, rows in ((0, 1), (40, 1), (7, 2), (50, 3), (60, 5), (88, 8), (10, 9)):
        np.testing.assert_array_equal(bundle.net_probs(windows[start : start + rows]), whole[:, start : start + rows])
