"""Per-instrument market logic, pure (no I/O, no Bytewax): feed parsing and sync, the book, features,
labels, arbitrage. It runs the same in a flow, in training and in a backtest."""
