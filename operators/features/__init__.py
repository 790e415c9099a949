"""Microstructure features: pure functions over batches of book states, and their registry."""

from quantumflow.features import FEATURE_INDEX, FEATURE_NAMES, FEATURES, Feature

__all__ = ["FEATURES", "FEATURE_INDEX", "FEATURE_NAMES", "Feature"]
