"""Per-instrument market logic, pure (no I/O, no Bytewax): feed parsing and sync, the book."""
