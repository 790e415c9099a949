"""The trained ensemble behind POST /v1/predict: loaded on first use, then kept; one prediction at a time."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import anyio
from fastapi import HTTPException

log = logging.getLogger("quantumflow.api")


class ModelsUnavailable(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(503, detail)


class PredictorHolder:
    """Loads ``models.serve.SnapshotPredictor`` once, on the first request. Until a checkpoint exists every
    request answers 503 and the next one looks again, so models trained later are picked up without a restart."""

    def __init__(self, models_dir: Path | None) -> None:
        self.models_dir = models_dir
        self._predictor: Any = None
        self._loading = anyio.Lock()
        self._one_at_a_time = anyio.CapacityLimiter(1)  # the models keep state and are not known to be thread-safe

    async def predict(self, snapshots: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The ensemble's predictions per horizon for the last snapshot; ValueError for a bad book."""
        predictor = await self._loaded()
        return await anyio.to_thread.run_sync(predictor.predict, snapshots, limiter=self._one_at_a_time)

    async def _loaded(self) -> Any:
        if self._predictor is None:
            async with self._loading:
                if self._predictor is None:
                    self._predictor = await anyio.to_thread.run_sync(self._load)
        return self._predictor

    def _load(self) -> Any:
        try:
            from models.checkpoints import CheckpointError
            from models.serve import SnapshotPredictor
        except ImportError as error:
            log.error("the models cannot be imported: %s", error)
            raise ModelsUnavailable(f"the prediction models cannot be imported: {error}") from None
        try:
            predictor = SnapshotPredictor.load(self.models_dir)
        except FileNotFoundError:
            raise ModelsUnavailable(f"no trained models in {self._folder()}; run quantumflow train") from None
        except CheckpointError as error:  # incomplete or inconsistent: retraining fixes it
            log.error("the models in %s cannot be loaded: %s", self._folder(), error)
            raise ModelsUnavailable(f"the models in {self._folder()} cannot be loaded: {error}") from None
        log.info("models loaded for horizons %s", ", ".join(predictor.horizons))
        return predictor

    def _folder(self) -> str:
        if self.models_dir is not None:
            return str(self.models_dir)
        from quantumflow.settings import models_dir

        return str(models_dir())
