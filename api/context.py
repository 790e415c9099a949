"""What every route needs, built once by ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass, field

from api.horizons import StoredHorizons
from api.predictor import PredictorHolder
from api.settings import ApiSettings
from api.store_access import StoreGateway
from api.telemetry import RequestMetrics


@dataclass
class ApiContext:
    settings: ApiSettings
    store: StoreGateway
    predictor: PredictorHolder
    metrics: RequestMetrics
    horizons: StoredHorizons = field(default_factory=StoredHorizons)  # the horizons each instrument has
