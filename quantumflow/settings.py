"""Where QuantumFlow keeps what it makes, and the environment variables that move it.

Every setting comes from the environment (documented in the README); nothing secret lives in code.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """``QF_DATA_DIR``, else ``data/`` in the project: the store, simulated recordings, fitted tables."""
    return Path(os.environ.get("QF_DATA_DIR") or PROJECT_ROOT / "data")


def simulated_recording_dir() -> Path:
    """Where ``quantumflow run`` with no recording simulates one (and finds it on later runs)."""
    return data_dir() / "simulated"


def micro_price_path() -> Path:
    """``QF_MICRO_PRICE``, else ``micro_price.json`` in the data folder."""
    return Path(os.environ.get("QF_MICRO_PRICE") or data_dir() / "micro_price.json")
