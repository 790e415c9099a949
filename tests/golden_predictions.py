"""Digests of the predictions table as a store holds it after a run and of the online state the
predictor ends with, so that a faster predictor (or fewer rows written for the same table) can be held
to give exactly today's table, bit for bit (as ``golden_rows`` does for the other tables).

``PYTHONPATH=.:tests python -m tests.golden_predictions [MODELS]`` writes ``tests/golden/predictions.json``
from the code as it is: the simulated minute with the small models in ``tests/golden/models`` (trained
on it by ``pipeline_runs.train_small_models``; kept, as training twice does not give the same networks
bit for bit), in batches of 97 and 1,000 messages, and, given a folder of models trained on the real
Binance spot 08-08, that day too.
``--check [MODELS]`` compares the code as it becomes against the file. The predictions are exact per
batch size only (a sum over labels may round otherwise when a batch is cut elsewhere), so each batch
size has its own digest.

Each entry also keeps a digest of what the predictor was given (the networks' outputs on every window
and the models' learned-once parts): on another machine the networks may round otherwise, and then the
predictions are not comparable (the test skips)."""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from dataflows.batches import derive_offline
from dataflows.rows import prediction_rows
from models.bundle import Bundle
from models.online import InstrumentPredictor
from operators.instrument import Derived
from quantumflow.settings import shared_data_dir
from simulator import simulate

GOLDEN = Path(__file__).parent / "golden" / "predictions.json"
MODELS = Path(__file__).parent / "golden" / "models"
SIMULATED = "simulated seed 7, 1 minute, binance_btcusdt.gz"
REAL = "binance/spot_btcusdt_20240808.gz"
BATCHES = (97, 1_000)


def _feed(digest: hashlib._Hash, value: object) -> None:
    """Hash a nest of dicts, lists, arrays and numbers by value (not by how pickle would share them)."""
    if isinstance(value, dict):
        for key in sorted(value, key=str):
            digest.update(repr(key).encode())
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"[{len(value)}".encode())
        for item in value:
            _feed(digest, item)
    elif isinstance(value, np.ndarray):
        digest.update(f"{value.dtype}{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    elif hasattr(value, "__slots__"):
        _feed(digest, {name: getattr(value, name) for name in value.__slots__})
    else:
        digest.update(repr(value).encode())


def _given(bundle: Bundle) -> hashlib._Hash:
    """A digest of the bundle's parts that do not learn in the flow, to which the nets' outputs are added."""
    digest = hashlib.sha256()
    parts = [bundle.thetas, bundle.window, bundle.bayes.temperature, bundle.bayes.stats, bundle.stacking]
    _feed(digest, [*parts, bundle.ensemble_settings(), list(bundle.normalizer), vars(bundle.logistic)])
    return digest


def prediction_digests(paths: list[Path], models: Path, batch_messages: int) -> dict[str, str]:
    """sha256 of the predictions table as a store holds it after the run (each key's last row, in key
    order, with their count), of each instrument's online state and waiting predictions at the end, and of
    what the predictor was given."""
    bundle = Bundle.load(models)
    given = _given(bundle)
    net_probs = bundle.net_probs

    def recorded(windows: np.ndarray, *args) -> np.ndarray:
        out = net_probs(windows, *args)
        given.update(out.tobytes())
        return out

    bundle.net_probs = recorded
    names, horizons = bundle.model_names, [h.name for h in bundle.horizons]
    predictors: dict[str, InstrumentPredictor] = {}
    table: dict[tuple, tuple] = {}  # the predictions table as the store holds it: upserts by its key
    for item in derive_offline(paths, batch_messages=batch_messages):
        if type(item) is not Derived:
            continue
        predictor = predictors.setdefault(item.instrument, InstrumentPredictor(bundle))
        made, matured = predictor.on_batch(item.frame, item.features)
        for row in prediction_rows(item.instrument, made, matured, names, horizons):
            table[row[:4]] = row  # instrument, ts, seq, horizon
    rows = hashlib.sha256()
    for key in sorted(table):
        rows.update(repr(table[key]).encode())
    state = hashlib.sha256()
    for instrument in sorted(predictors):
        predictor = predictors[instrument]
        _feed(state, [instrument, predictor.online_state(), predictor.snapshot()["pending"], predictor.events])
    return {"given": given.hexdigest(), "predictions": f"{len(table)}:{rows.hexdigest()}", "state": state.hexdigest()}


def simulated_binance(folder: Path) -> Path:
    """The conftest's simulated minute's Binance recording (the one ``simulated_models`` are trained on)."""
    simulate(folder, seed=7, minutes=1)
    return folder / "binance_btcusdt.gz"


def all_digests(real_models: Path | None) -> dict[str, dict[str, dict[str, str]]]:
    out: dict[str, dict[str, dict[str, str]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        recording = simulated_binance(Path(scratch))
        out[SIMULATED] = {str(size): prediction_digests([recording], MODELS, size) for size in BATCHES}
    if real_models is not None:
        real = [shared_data_dir() / REAL]
        out[REAL] = {str(size): prediction_digests(real, real_models, size) for size in BATCHES}
    return out


def main(arguments: list[str]) -> None:
    check = "--check" in arguments
    folders = [Path(a) for a in arguments if a != "--check"]
    digests = all_digests(folders[0] if folders else None)
    if not check:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(digests, indent=1) + "\n")
        return
    expected = json.loads(GOLDEN.read_text())
    same = all(digests[name] == expected.get(name) for name in digests)
    print(json.dumps(digests, indent=1))
    print("identical" if same else "DIFFERENT", file=sys.stderr)
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main(sys.argv[1:])
