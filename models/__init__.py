"""Direction models: the River online learner, the Torch sequence models, the ensemble, baselines,
checkpoints, training, serving and evaluation (docs/models.md)."""
