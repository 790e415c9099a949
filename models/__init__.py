"""Direction models: the River online learner, Torch sequence models, the ensemble (coming with the models issue)."""
