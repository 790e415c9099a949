from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import pytest
from store_backends import BACKENDS, empty_store_url

from quantumflow.settings import shared_data_dir
from simulator import simulate

if TYPE_CHECKING:
    from dataflows.training import Result

SHARED_DATA = shared_data_dir()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real exchange recordings beside the project (CI always has them; a user's clone may not)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real recordings not found at {SHARED_DATA} (they live beside the project, not in it)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def simulated_recording(tmp_path_factory) -> Path:
    """A folder holding one simulated minute of BTC on Binance and Coinbase (about 12,000 messages, no faults):
    the recording the pipeline's tests replay, made here so that they need nothing beside the project."""
    folder = tmp_path_factory.mktemp("simulated")
    simulate(folder, seed=7, minutes=1)
    return folder


@pytest.fixture(scope="session")
def binance_spot(simulated_recording) -> Path:
    """A Binance spot BTCUSDT recording, for tests of behaviour that hold on any: the real day where the
    real recordings are, else the simulated minute (so that a clone alone runs them)."""
    real = SHARED_DATA / "binance" / "spot_btcusdt_20240808.gz"
    return real if real.is_file() else simulated_recording / "binance_btcusdt.gz"


@pytest.fixture(scope="session")
def faulty_recording(tmp_path_factory) -> Path:
    """Two simulated minutes with every kind of fault: a lost Binance diff, a lost Coinbase level2 message
    and lines cut short (see the folder's manifest.json)."""
    folder = tmp_path_factory.mktemp("faulty")
    kinds = {fault["kind"] for fault in simulate(folder, seed=7, minutes=2, faults=True).faults}
    assert kinds == {"dropped_diff", "dropped_l2_message", "malformed_line"}, kinds
    return folder


@pytest.fixture(params=BACKENDS)
def store_backend(request) -> str:
    return request.param


@pytest.fixture
def store_url(store_backend, tmp_path) -> str:
    """The URL of an empty store, once per backend: a new SQLite file; the QuestDB server that
    QF_TEST_QUESTDB=host:port names, its tables dropped (skipped without it). See store_backends.py."""
    return empty_store_url(store_backend, tmp_path)


class TrainedModels(NamedTuple):
    recording: Path  # trained on its first 85%, tested on the rest
    folder: Path  # the checkpoints
    result: Result


@pytest.fixture(scope="session")
def simulated_models(simulated_recording, tmp_path_factory) -> TrainedModels:
    """Small models (pipeline_runs.MODEL_HORIZONS) trained on the simulated Binance minute: enough to predict
    with and to check what training reports, not to be right."""
    from pipeline_runs import train_small_models  # torch and Bytewax, only for the tests that need them

    recording = simulated_recording / "binance_btcusdt.gz"
    folder = tmp_path_factory.mktemp("models")
    return TrainedModels(recording, folder, train_small_models(recording, folder))


@pytest.fixture(autouse=True, scope="session")
def _own_data_folder(tmp_path_factory):
    """Tests never read or write the project's data/ (a developer's models or store there would
    change what the flow does); each session gets a data folder of its own."""
    patch = pytest.MonkeyPatch()
    patch.setenv("QF_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    for name in ("QF_STORE", "QF_MODELS_DIR", "QF_ONLINE_STATE", "QF_MICRO_PRICE"):
        patch.delenv(name, raising=False)
    yield
    patch.undo()
