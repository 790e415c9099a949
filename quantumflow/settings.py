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


def tuning_dir() -> Path:
    """``tuning/`` in the data folder: where ``quantumflow tune`` keeps its study and best settings by
    default, and where ``train`` and ``evaluate`` look for them."""
    return data_dir() / "tuning"


def models_dir() -> Path:
    """``QF_MODELS_DIR``, else ``models/`` in the data folder: the checkpoints the flow and the API load."""
    return Path(os.environ.get("QF_MODELS_DIR") or data_dir() / "models")


def online_state_dir() -> Path:
    """``QF_ONLINE_STATE``, else ``online_state/`` in the data folder: the online learner and ensemble
    of each instrument, saved by the flow so that a restart carries on where it stopped."""
    return Path(os.environ.get("QF_ONLINE_STATE") or data_dir() / "online_state")


def shared_data_dir() -> Path:
    """``QF_SHARED_DATA``, else ``../shared/data`` beside the project: the real exchange recordings that the
    exactness tests and the benchmarks read (the project ships none)."""
    return Path(os.environ.get("QF_SHARED_DATA") or PROJECT_ROOT.parent / "shared" / "data")


ENSEMBLE_METHODS = ("hedge", "mixture", "stacking")


def ensemble_method() -> str:
    """``QF_ENSEMBLE``: which combination of the models the flow's predictions are, ``hedge`` (the
    default: the top layer over the mixture, the stacking layer and the logistic baseline, with its
    decision rule), ``mixture`` or ``stacking`` (each decided by its argmax)."""
    value = os.environ.get("QF_ENSEMBLE") or ENSEMBLE_METHODS[0]
    if value not in ENSEMBLE_METHODS:
        raise ValueError(f"QF_ENSEMBLE={value!r}: expected one of {', '.join(ENSEMBLE_METHODS)}")
    return value
