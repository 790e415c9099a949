"""Every predictions row, and the online state the predictor ends with, are exactly what they were when
tests/golden/predictions.json was written (``python -m tests.golden_predictions``): a faster predictor
or faster rows must not change a bit."""

from __future__ import annotations

import json

import pytest
from golden_predictions import BATCHES, GOLDEN, MODELS, SIMULATED, prediction_digests, simulated_binance

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
