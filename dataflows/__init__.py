"""Bytewax flows and what they read and write: recording sources, the predict flow and its store sink,
offline replays for training and evaluation."""
