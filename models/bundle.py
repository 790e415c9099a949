"""Checkpoints: everything needed to serve the models, saved as one folder.

- ``<net>.pt`` per Torch network (loaded with ``weights_only=True``): weights, architecture,
  and the shared ``meta``.
- ``bayes.pkl``: the starting state of what learns in the flow (the online learner's statistics), the
  logistic baseline's coefficients and the stacking layer's starting weights, pickled (load only
  checkpoints you trust), with the same ``meta``.
- ``manifest.json``: ``meta`` and the training figures, for people.

``meta`` is what a checkpoint carries besides weights: the input names, their standardization,
the horizons and their flat bands θ, the window length, the networks' architecture (width, depth,
dropout), the ensemble's forgetting and sharpness, the settings trained with and where they came
from, per-model temperatures, the seed, the
data it was trained on (the recordings, and each instrument with its source: simulated or
recorded) and the versions of the libraries.

The files' names, whether a folder holds checkpoints and the error for one that cannot be loaded are in
``models.checkpoints``, which imports no Torch (a run without models never imports this module).
"""

from __future__ import annotations

import json
import pickle
import platform
import threading
import warnings
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from models.baselines import LogisticMember
from models.bayes import OnlineBayes
from models.calibration import softmax
from models.checkpoints import BAYES_FILE, MANIFEST, CheckpointError, require_checkpoints
from models.inputs import INPUT_NAMES, Normalizer
from models.nets import NETS
from quantumflow.horizons import Horizon
from quantumflow.settings import models_dir

# Torch computes a batch of a few rows on another kernel than larger batches, with other rounding: smaller
# batches are padded to this many rows, so that an event's probabilities do not depend on how many events
# its batch held (a paced or resumed replay cuts batches differently). How few depends on the processor:
# up to 2 rows on one machine this was measured on, up to 3 on another (an AVX-512 one); 8 gives the bits of
# any larger batch on both (tests compare them). Every padded row costs a live feed's one-event batch.
MIN_BATCH_ROWS = 8
TRACE_ROWS = 8  # the example batch the nets are traced with
_SHARED = ("inputs", "normalization", "horizons", "thetas", "window", "models")


def versions() -> dict[str, str]:
    names = ("quantumflow", "torch", "numpy", "river")
    return {"python": platform.python_version(), **{name: version(name) for name in names}}


@dataclass
class Bundle:
    horizons: list[Horizon]
    thetas: np.ndarray  # flat band per horizon, bps
    normalizer: Normalizer
    window: int
    nets: dict[str, torch.nn.Module]
    temperatures: dict[str, np.ndarray]  # per net: one per horizon
    bayes: OnlineBayes
    meta: dict = field(default_factory=dict)
    logistic: LogisticMember | None = None
    stacking: np.ndarray | None = None  # the stacking layer's starting weights (horizons, 3, 3 models + 1)
    fixed: bool = False  # the nets' weights no longer change (loaded to serve): inference may run them traced
    _traced: torch.jit.ScriptModule | None = field(default=None, init=False, repr=False, compare=False)
    _tracing: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @property
    def model_names(self) -> list[str]:
        return [*self.nets, OnlineBayes.name, LogisticMember.name]

    def ensemble_settings(self) -> dict[str, float]:
        """The ensemble's forgetting and sharpness the models were trained with (empty: the defaults)."""
        return self.meta.get("ensemble", {})

    def trained_on(self) -> dict[str, str] | None:
        """Each instrument the models were trained on, and whether its recording was simulated or
        recorded; None for checkpoints that do not say (trained before this was kept)."""
        return self.meta.get("trained_on", {}).get("instruments")

    def net_probs(self, windows: np.ndarray, chunk: int = 1024) -> np.ndarray:
        """(n, window, inputs) standardized windows -> (nets, n, horizons, 3) probabilities."""
        out = np.empty((len(self.nets), len(windows), len(self.horizons), 3))
        if not self.nets:
            return out
        temperatures = np.stack([self.temperatures[name] for name in self.nets])[:, None, :, None]
        with torch.inference_mode():
            nets = self._inference_nets(windows.shape[1:])
            for start in range(0, len(windows), chunk):
                rows = windows[start : start + chunk]
                x = torch.from_numpy(np.ascontiguousarray(_padded(rows, MIN_BATCH_ROWS)))
                out[:, start : start + len(rows)] = softmax(nets(x).numpy()[:, : len(rows)] / temperatures)
        return out

    def ready_to_serve(self) -> None:
        """Trace the nets now and run them a few times (TorchScript optimizes a graph over its first
        runs), before the first batch waits for them."""
        inputs = len(self.normalizer.mean)
        for rows in (1, 1, 2 * TRACE_ROWS, 2 * TRACE_ROWS):
            self.net_probs(np.zeros((rows, self.window, inputs), dtype=np.float32))

    def _inference_nets(self, window_shape: tuple[int, ...]) -> torch.nn.Module:
        """The nets as run, all in one call: traced and frozen once their weights are fixed. A traced net
        runs the same kernels on the same numbers (so the same bits) without the Python of each module
        call, which is most of the cost of the small batches a live feed brings."""
        if not self.fixed:
            return _AllNets(self.nets)
        if self._traced is not None:
            return self._traced
        # the flow's workers share the models: one traces, the others wait for it; traced as served, without
        # autograd (Torch's fast Transformer path is taken only then)
        with self._tracing, torch.inference_mode():
            if self._traced is None:
                example = torch.zeros((TRACE_ROWS, *window_shape), dtype=torch.float32)
                with warnings.catch_warnings():
                    # the attention's shape checks become constants of the trace: right for every batch size,
                    # since only the batch's size changes; tests compare traced and eager nets at several sizes,
                    # so the trace is not rerun and compared at each load
                    warnings.simplefilter("ignore", torch.jit.TracerWarning)
                    self._traced = _traced(_AllNets(self.nets), example)
        return self._traced

    def save(self, folder: str | Path, extra: dict | None = None) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {**self.meta, **self.shared_meta(), "versions": versions()}
        for name, net in self.nets.items():
            meta_net = {**meta, "temperature": self.temperatures[name].tolist()}
            torch.save({"kind": name, "state_dict": net.state_dict(), "meta": meta_net}, folder / f"{name}.pt")
        state = {
            "meta": {**meta, "temperature": self.bayes.temperature.tolist()},
            "stats": self.bayes.stats,
            "logistic": (self.logistic.weight, self.logistic.bias),
            "stacking": self.stacking,
        }
        (folder / BAYES_FILE).write_bytes(pickle.dumps(state))
        (folder / MANIFEST).write_text(json.dumps({**meta, **(extra or {})}, indent=1))
        return folder

    def shared_meta(self) -> dict:
        return {
            "inputs": list(INPUT_NAMES),
            "normalization": self.normalizer.to_dict(),
            "horizons": [h.name for h in self.horizons],
            "thetas": self.thetas.tolist(),
            "window": self.window,
            "models": self.model_names,
        }

    @classmethod
    def load(cls, folder: str | Path | None = None) -> Bundle:
        """The models in ``folder`` (default ``QF_MODELS_DIR`` or data/models)."""
        folder = Path(folder) if folder is not None else models_dir()
        require_checkpoints(folder)
        files = sorted(folder.glob("*.pt"))
        try:
            bayes_state = pickle.loads((folder / BAYES_FILE).read_bytes())
            meta = bayes_state["meta"]
            if "stacking" not in bayes_state:
                raise CheckpointError(f"{folder}: trained by an older version (no stacking layer); train again")
            nets, temperatures = {}, {}
            for path in files:
                checkpoint = torch.load(path, weights_only=True)
                _check_same(meta, checkpoint["meta"], path)
                kind = checkpoint["kind"]
                net = NETS[kind](
                    len(meta["inputs"]), len(meta["horizons"]), meta["window"], **meta.get("architecture", {})
                )
                net.load_state_dict(checkpoint["state_dict"])
                nets[kind] = net.eval()
                temperatures[kind] = np.asarray(checkpoint["meta"]["temperature"], dtype=float)
        except (OSError, KeyError, RuntimeError, pickle.UnpicklingError, EOFError) as error:
            raise CheckpointError(f"{folder}: unreadable checkpoint: {error}") from None
        missing = [name for name in meta["models"] if name in NETS and name not in nets]
        if missing:
            raise CheckpointError(f"{folder}: missing {', '.join(f'{name}.pt' for name in missing)}")
        if list(meta["inputs"]) != list(INPUT_NAMES):
            raise CheckpointError(f"{folder}: trained on other inputs than this version computes; train again")
        torch.set_num_threads(1)  # inference runs in a flow worker's thread: one core each, no oversubscription
        bayes = OnlineBayes(len(meta["horizons"]), meta["temperature"])
        bayes.stats = bayes_state["stats"]
        return cls(
            [Horizon.parse(name) for name in meta["horizons"]],
            np.asarray(meta["thetas"], dtype=float),
            Normalizer.from_dict(meta["normalization"]),
            int(meta["window"]),
            nets,
            temperatures,
            bayes,
            {k: v for k, v in meta.items() if k != "temperature"},
            LogisticMember(*bayes_state["logistic"]),
            bayes_state["stacking"],
            fixed=True,
        )


def _check_same(meta: dict, other: dict, path: Path) -> None:
    for key in _SHARED:
        if meta[key] != other[key]:
            raise CheckpointError(f"{path} has other {key} than {BAYES_FILE} beside it: they were not trained together")


class _AllNets(torch.nn.Module):
    """The nets side by side: (n, window, inputs) -> (nets, n, horizons, 3) logits, one call for all."""

    def __init__(self, nets: dict[str, torch.nn.Module]) -> None:
        super().__init__()
        self.nets = torch.nn.ModuleList(nets.values())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([net(x) for net in self.nets])


def _traced(net: torch.nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    return torch.jit.freeze(torch.jit.trace(net.eval(), example, check_trace=False))


def _padded(rows: np.ndarray, at_least: int) -> np.ndarray:
    """``rows``, with copies of its last row after it if it has fewer than ``at_least``."""
    if len(rows) >= at_least:
        return rows
    return np.concatenate([rows, np.repeat(rows[-1:], at_least - len(rows), axis=0)])
