"""POST /v1/predict with trained models (tiny ones, from tests/test_api.py): the answers are the models',
bad books are 422s saying why, and missing or broken checkpoints are 503s saying what to do."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest
import torch
from test_api import HORIZONS, SETTINGS, client, flow_store_fixture, trained_models_fixture  # noqa: F401 (fixtures)

from models.serve import SnapshotPredictor
from store.schema import LEVELS

ETH = "binance:ETHUSDT"


@pytest.fixture(scope="module")
def predicting(flow_store, trained_models):
    with client(replace(SETTINGS, store_url=flow_store, models_dir=trained_models)) as http:
        yield http


def snapshots_from_the_store(flow_store: str, count: int) -> list[dict]:
    """The instrument's last ``count`` stored books, as a client would send them."""
    from store import open_store

    with open_store(flow_store).reader() as reader:
        rows = reader.range("book", ETH, 0, 2**63 - 1, limit=100_000)[-count:]
    return [
        {
            "ts": row["ts"],
            "bids": [[row[f"bid_price_{k}"], row[f"bid_size_{k}"]] for k in range(1, LEVELS + 1)],
            "asks": [[row[f"ask_price_{k}"], row[f"ask_size_{k}"]] for k in range(1, LEVELS + 1)],
        }
        for row in rows
    ]


def test_predictions_for_stored_books_are_the_models(predicting, flow_store, trained_models):
    snapshots = snapshots_from_the_store(flow_store, 40)
    answer = predicting.post("/v1/predict", json={"snapshots": snapshots})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ts"] == snapshots[-1]["ts"]
    assert body["predictions"] == SnapshotPredictor.load(trained_models).predict(snapshots)
    assert [p["horizon"] for p in body["predictions"]] == list(HORIZONS)
    for p in body["predictions"]:
        probs = [p["p_down"], p["p_flat"], p["p_up"]]
        assert sum(probs) == pytest.approx(1) and p["confidence"] == max(probs)
        assert p["predicted"] == probs.index(max(probs)) - 1
        assert set(p["models"]) == set(p["weights"]) >= {"bayes", "lstm"}
    one = predicting.post("/v1/predict", json={"snapshots": snapshots[-1:]})  # a single book is enough
    assert one.status_code == 200 and len(one.json()["predictions"]) == len(HORIZONS)


@pytest.mark.parametrize(
    ("bids", "asks", "message"),
    [
        ([[101.0, 1.0]], [[100.0, 1.0]], "snapshot 2: the book is crossed (best bid 101.0 >= best ask 100.0)"),
        ([[99.0, 1.0], [100.0, 1.0]], [[101.0, 1.0]], "snapshot 2: bids must be distinct prices, best first"),
        ([[100.0, 0.0]], [[101.0, 1.0]], "snapshot 2: bids need finite positive prices and sizes"),
    ],
)
def test_a_book_the_models_cannot_use_is_a_422_saying_why(predicting, bids, asks, message):
    good = {"ts": 1, "bids": [[100.0, 1.0]], "asks": [[101.0, 1.0]]}
    answer = predicting.post("/v1/predict", json={"snapshots": [good, {"ts": 2, "bids": bids, "asks": asks}]})
    assert answer.status_code == 422
    assert answer.json() == {"detail": [{"type": "value_error", "loc": ["body", "snapshots"], "msg": message}]}


def test_models_trained_after_start_are_picked_up_without_a_restart(flow_store, trained_models, tmp_path):
    folder = tmp_path / "models"
    book = {"snapshots": [{"ts": 1, "bids": [[100.0, 1.0]], "asks": [[101.0, 1.0]]}]}
    with client(replace(SETTINGS, store_url=flow_store, models_dir=folder)) as http:
        missing = http.post("/v1/predict", json=book)
        assert missing.status_code == 503
        assert missing.json() == {"detail": f"no trained models in {folder}; run quantumflow train"}
        shutil.copytree(trained_models, folder)
        assert http.post("/v1/predict", json=book).status_code == 200


def test_checkpoints_not_trained_together_are_a_503(flow_store, trained_models, tmp_path):
    folder = tmp_path / "models"
    shutil.copytree(trained_models, folder)
    checkpoint = torch.load(folder / "lstm.pt", weights_only=True)
    checkpoint["meta"]["window"] += 1
    torch.save(checkpoint, folder / "lstm.pt")
    with client(replace(SETTINGS, store_url=flow_store, models_dir=folder)) as http:
        answer = http.post("/v1/predict", json={"snapshots": [{"ts": 1, "bids": [[1.0, 1.0]], "asks": [[2.0, 1.0]]}]})
        assert answer.status_code == 503
        detail = answer.json()["detail"]
        assert detail.startswith(f"the models in {folder} cannot be loaded: ") and "not trained together" in detail
