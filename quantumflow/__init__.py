"""The shared kernel every part of QuantumFlow builds on: the event schema and instrument key
(``events``), the feature registry (``features``) and the settings (``settings``). It imports nothing of
the project."""
