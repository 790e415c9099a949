from pathlib import Path

import pytest

from quantumflow.settings import shared_data_dir

SHARED_DATA = shared_data_dir()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real exchange recordings beside the project (CI always has them; a user's clone may not)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real recordings not found at {SHARED_DATA} (they live beside the project, not in it)")
    return SHARED_DATA


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
