from pathlib import Path

import pytest

from quantumflow.settings import shared_data_dir
from simulator import simulate

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
def faulty_recording(tmp_path_factory) -> Path:
    """Two simulated minutes with every kind of fault: a lost Binance diff, a lost Coinbase level2 message
    and lines cut short (see the folder's manifest.json)."""
    folder = tmp_path_factory.mktemp("faulty")
    kinds = {fault["kind"] for fault in simulate(folder, seed=7, minutes=2, faults=True).faults}
    assert kinds == {"dropped_diff", "dropped_l2_message", "malformed_line"}, kinds
    return folder


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
