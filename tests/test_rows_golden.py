"""Every row the flow derives is exactly what it was when tests/golden/rows.json was written
(``python -m tests.golden_rows``), on every recording in the shared data and on a simulated one
with faults, however the stream is cut: a faster hot path must not change a bit."""

from __future__ import annotations

import json

import pytest
from golden_rows import GOLDEN, RECORDINGS, SIMULATED, row_digests, shared_paths, simulated

EXPECTED = json.loads(GOLDEN.read_text())


@pytest.fixture(scope="module")
def simulated_with_faults(tmp_path_factory):
    return simulated(tmp_path_factory.mktemp("golden"))


@pytest.mark.parametrize("name", RECORDINGS)
def test_rows_on_the_real_recordings(shared_data, name):
    assert row_digests(shared_paths(shared_data, name)) == EXPECTED[name]


@pytest.mark.parametrize("batch_messages", [1, 97, 1_000])
def test_rows_on_a_simulated_recording(simulated_with_faults, batch_messages):
    assert row_digests([simulated_with_faults], batch_messages) == EXPECTED[SIMULATED]


@pytest.mark.parametrize("name", ["coinbase/COINBASE.ws.28.0", "kraken/KRAKEN.ws.50.0", "lobster"])
@pytest.mark.parametrize("batch_messages", [1, 97])
def test_rows_on_small_real_recordings_in_small_batches(shared_data, name, batch_messages):
    assert row_digests(shared_paths(shared_data, name), batch_messages) == EXPECTED[name]
