"""Predictions for book snapshots sent by a client, without a flow (``POST /v1/predict``).

The snapshots go through the flow's own operators: each becomes the book (``OrderBook``), the
features are computed over the sequence as the flow would over consecutive book states, the
best bid/offer changes are the events, and the networks read the window ending at the last
snapshot (earlier positions of the window are the training mean, as at the start of a stream).
The online learner answers from its checkpoint state. No label has matured for a client's
snapshots, so the mixture's weights are equal and the stacking layer has its starting weights.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from models.bundle import Bundle
from models.checkpoints import NoCheckpoints
from models.ensemble import Ensemble
from models.inputs import ONLINE_INPUT_INDEX
from models.stacking import Stacking, stacking_inputs
from models.stream import BboStream
from operators.book import OrderBook
from operators.features.compute import FeatureState, compute_features
from operators.features.frame import FrameBuilder
from operators.labels import CLASS_SIGNS
from quantumflow.events import BookSnapshot
from quantumflow.settings import ensemble_method

_CLASSES = ("p_down", "p_flat", "p_up")


class SnapshotPredictor:
    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.horizons = [h.name for h in bundle.horizons]

    @classmethod
    def load(cls, models_dir: str | Path | None = None) -> SnapshotPredictor:
        """Raises FileNotFoundError when the folder holds no checkpoint, CheckpointError when it
        holds a broken one."""
        try:
            return cls(Bundle.load(models_dir))
        except NoCheckpoints as error:
            raise FileNotFoundError(str(error)) from None

    def predict(self, snapshots: list[dict]) -> list[dict]:
        """One prediction per horizon for the last of ``snapshots`` (time-ordered dicts with
        ``ts`` in ns and ``bids`` / ``asks`` as [price, size] best first). ValueError names what
        is wrong with a bad book."""
        if not snapshots:
            raise ValueError("no snapshots")
        frame = FrameBuilder()
        for seq, snapshot in enumerate(snapshots, 1):
            book = OrderBook()
            book.apply_snapshot(_checked(snapshot, seq))
            frame.add_book(book, int(snapshot["ts"]), seq, None, None, reset=seq == 1)
        built = frame.build()
        features = compute_features(FeatureState(None), built)
        events = BboStream()(built, features, last_is_event=True)  # the last snapshot is the one asked about
        bundle = self.bundle
        z = bundle.normalizer(events.inputs)
        window = np.vstack([np.zeros((bundle.window, z.shape[1]), dtype=np.float32), z])[-bundle.window :]
        model_probs = np.concatenate(
            [
                bundle.net_probs(window[None])[:, 0],
                bundle.bayes.predict(z[-1, ONLINE_INPUT_INDEX])[None],
                bundle.logistic.predict(z[-1:]),
            ]
        )
        ensemble = Ensemble(bundle.model_names, len(self.horizons))
        weights = ensemble.weights()
        if ensemble_method() == "stacking":
            probs = Stacking(bundle.stacking).predict(stacking_inputs(model_probs.swapaxes(0, 1)))
        else:
            probs = ensemble.combine(model_probs, weights)
        out = []
        for h, horizon in enumerate(self.horizons):
            best = int(np.argmax(probs[h]))
            out.append(
                {
                    "horizon": horizon,
                    **dict(zip(_CLASSES, probs[h].tolist(), strict=True)),
                    "predicted": CLASS_SIGNS[best],
                    "confidence": float(probs[h, best]),
                    "models": {m: model_probs[i, h].tolist() for i, m in enumerate(bundle.model_names)},
                    "weights": dict(zip(bundle.model_names, weights[h].tolist(), strict=True)),
                }
            )
        return out


def _checked(snapshot: dict, number: int) -> BookSnapshot:
    where = f"snapshot {number}"
    sides = {}
    for side in ("bids", "asks"):
        levels = [(float(price), float(size)) for price, size in snapshot.get(side) or []]
        if not levels:
            raise ValueError(f"{where}: no {side}")
        if not all(math.isfinite(p) and math.isfinite(q) and p > 0 and q > 0 for p, q in levels):
            raise ValueError(f"{where}: {side} need finite positive prices and sizes")
        prices = [p for p, _ in levels]
        ordered = sorted(prices, reverse=side == "bids")
        if prices != ordered or len(set(prices)) != len(prices):
            raise ValueError(f"{where}: {side} must be distinct prices, best first")
        sides[side] = levels
    if sides["bids"][0][0] >= sides["asks"][0][0]:
        raise ValueError(
            f"{where}: the book is crossed (best bid {sides['bids'][0][0]} >= best ask {sides['asks'][0][0]})"
        )
    return BookSnapshot("client", None, int(snapshot["ts"]), None, sides["bids"], sides["asks"])
