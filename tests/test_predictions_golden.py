"""The predictions table a run leaves, and the online state the predictor ends with, are exactly what they were when
tests/golden/predictions.json was written (``python -m tests.golden_predictions``): a faster predictor
or faster rows must not change a bit."""

from __future__ import annotations

import json

import numpy as np
import pytest
from golden_predictions import BATCHES, GOLDEN, MODELS, SIMULATED, prediction_digests, simulated_binance

from dataflows.batches import derive_offline
from dataflows.rows import prediction_rows
from models.bundle import Bundle
from models.online import InstrumentPredictor
from operators.instrument import Derived

EXPECTED = json.loads(GOLDEN.read_text())


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    return simulated_binance(tmp_path_factory.mktemp("golden-predictions"))


@pytest.mark.parametrize("batch_messages", BATCHES)
def test_predictions_on_a_simulated_recording(recording, batch_messages):
    expected = EXPECTED[SIMULATED][str(batch_messages)]
    digests = prediction_digests([recording], MODELS, batch_messages)
    if digests["given"] != expected["given"]:
        pytest.skip("the networks' outputs round otherwise on this machine: the predictions are not comparable")
    assert digests == expected


def test_a_batch_read_one_by_one_gives_what_its_arrays_hold(recording):
    """``Predictions`` and ``MaturedLabels`` read as ``Prediction`` and ``Matured`` (as training and the
    backtester read them) hold what the arrays the rows are taken from hold."""
    bundle = Bundle.load(MODELS)
    predictor, labelled = InstrumentPredictor(bundle), 0
    for item in derive_offline([recording], batch_messages=300):
        if type(item) is not Derived:
            continue
        made, matured = predictor.on_batch(item.frame, item.features)
        for j, prediction in enumerate(made):
            assert prediction.seq == made[j].seq == int(made.seq[j]) and type(prediction.ts) is int
            np.testing.assert_array_equal(prediction.model_probs, made.model_probs[j])
        if not len(matured):
            continue
        seqs, probs = matured.at_horizon("seq"), matured.at_horizon("probs")
        for k, m in enumerate(matured):
            assert (m.prediction.seq, m.horizon, m.label) == (
                matured[k].prediction.seq,
                matured[k].horizon,
                matured[k].label,
            )
            assert (m.prediction.seq, m.horizon, m.label) == (seqs[k], matured.horizon[k], matured.label[k])
            np.testing.assert_array_equal(m.prediction.probs[m.horizon], probs[k])
            labelled += 1
    assert labelled > 10_000


def test_a_prediction_labelled_in_its_own_batch_is_written_once_labelled(recording):
    bundle = Bundle.load(MODELS)
    predictor, horizons = InstrumentPredictor(bundle), [h.name for h in bundle.horizons]
    written = once = 0
    for item in derive_offline([recording], batch_messages=1_000):
        if type(item) is not Derived:
            continue
        made, matured = predictor.on_batch(item.frame, item.features)
        rows = prediction_rows(item.instrument, made, matured, bundle.model_names, horizons)
        keys = [row[:4] for row in rows]
        assert len(set(keys)) == len(keys)  # no row replaced within its batch
        labelled = {row[:4] for row in rows if row[-3] is not None}
        assert len(labelled) == len(matured)
        unlabelled = len(rows) - len(labelled)
        assert unlabelled == len(made) * len(horizons) - len(matured.labelled_in(made))
        written += len(rows)
        once += len(matured.labelled_in(made))
    assert once > written / 4  # most short horizons mature within a batch of 1,000 messages
